import Delivery
import Foundation
import SeededRandom
import Testing

/// Dead-letter lines are read without `JSONDecoder`; Foundation's `JSONDecoder` (through
/// `DeadLetter.decoder`) is the reference: every line must read to what it decodes, and every
/// line it refuses must be refused.
struct DeadLetterLineTests {
    static let pieces = [
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{01}", "\u{1F}", "\u{7F}", "é", "中", "🙂", "\u{2028}",
        "order_id", "{", "}", "[", "]", ",", ":",
    ]

    static func text(_ random: inout SplitMix64, maximumLength: Int = 12) -> String {
        (0..<Int.random(in: 0...maximumLength, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    static func date(_ random: inout SplitMix64) -> Date {
        Date(timeIntervalSince1970: TimeInterval(Int64.random(in: 0...4_102_444_800_000, using: &random)) / 1_000)
    }

    static func deadLetter(_ random: inout SplitMix64) -> DeadLetter {
        let attempts = (0..<Int.random(in: 0...4, using: &random)).map { _ in
            DeadLetter.Attempt(
                at: date(&random),
                status: Bool.random(using: &random) ? Int.random(in: 100...599, using: &random) : nil,
                error: Bool.random(using: &random) ? text(&random) : nil
            )
        }
        var headers: [String: String] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &random) { headers[text(&random, maximumLength: 6)] = text(&random) }
        // Random bytes are usually not UTF-8: those go to `bodyBase64`.
        let body =
            Bool.random(using: &random)
            ? Data(text(&random, maximumLength: 40).utf8)
            : Data((0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        return DeadLetter(
            id: "dl_" + text(&random), eventID: text(&random), consumer: text(&random), source: text(&random),
            eventType: Bool.random(using: &random) ? text(&random) : nil, dedupKey: text(&random),
            receivedAt: date(&random), deadLetteredAt: date(&random), reason: text(&random), attempts: attempts,
            headers: headers, body: body)
    }

    static func decoded(_ line: String) -> DeadLetter? {
        try? DeadLetter.decoder.decode(DeadLetter.self, from: Data(line.utf8))
    }

    @Test func readsWhatTheDecoderReadsFromWrittenLines() throws {
        var random = SplitMix64(state: 0x0DEA_D1E7)
        for _ in 0..<2_000 {
            let deadLetter = Self.deadLetter(&random)
            let line = try DeadLetter.encoder.encode(deadLetter)
            let reference = try DeadLetter.decoder.decode(DeadLetter.self, from: line)
            #expect(DeadLetter.read(line: line) == reference)
            #expect(reference.bodyBytes == deadLetter.bodyBytes)
        }
    }

    static let base = #"""
        {"attempts":[{"at":"2026-11-24T10:00:00.500Z","error":null,"status":503}],"bodyBase64":null,"consumer":"orders",\#
        "deadLetteredAt":"2026-11-24T10:00:01.000Z","dedupKey":"tiktok:e:o1","eventId":"evt_1","eventType":"minis.x",\#
        "headers":{"content-type":"application/json"},"id":"dl_1","reason":"max attempts","receivedAt":"2026-11-24T10:00:00.000Z",\#
        "source":"tiktok","body":"{\"a\":1}"}
        """#

    /// `base` with one piece replaced.
    static func base(replacing piece: String, with replacement: String) -> String {
        base.replacingOccurrences(of: piece, with: replacement)
    }

    /// Lines written by hand, as an operator might edit one: whitespace, an unknown key with a
    /// nested value, escapes (a surrogate pair among them), nulls and absence for the optional
    /// fields, a time in another RFC 3339 spelling, an unknown number.
    static let handWrittenLines: [String] = [
        base,
        #" { "id" : "dl_2" , "eventId":"e","consumer":"c","source":"s","dedupKey":"k\"\\\/\u00e9\ud83d\ude42\n","eventType":null,"receivedAt":"2026-11-24T11:00:00+01:00","deadLetteredAt":"2026-11-24T10:00:01Z","reason":"r","attempts":[ {"at":"2026-11-24T10:00:00.5Z"} , {"at":"2026-11-24T10:00:00Z","status":null,"error":"refused","why":[1,2.5e3,true,{"x":null}]} ],"headers":{},"extra":{"a":[[]]}} "#,
        base(replacing: #""source":"tiktok","#, with: #""source":"tiktok","note":-0.5E-2,"#),
    ]

    /// The decoder's answer is the expected one.
    @Test(arguments: handWrittenLines)
    func readsHandWrittenLinesAsTheDecoderDoes(line: String) throws {
        let reference = try #require(Self.decoded(line))
        #expect(DeadLetter.read(line: Data(line.utf8)) == reference)
    }

    /// Lines the decoder refuses: a required field missing or null, a wrong type, a bad time,
    /// bad JSON (trailing bytes, cut short, a raw control character, a bad escape, a lone surrogate).
    static let refusedLines: [String] = [
        base(replacing: #""id":"dl_1","#, with: ""),
        base(replacing: #""reason":"max attempts","#, with: ""),
        base(replacing: #""headers":{"content-type":"application/json"},"#, with: ""),
        base(replacing: #""status":503"#, with: #""status":"503""#),
        base(replacing: #""status":503"#, with: #""status":503.5"#),
        base(replacing: #""status":503"#, with: #""status":99999999999999999999"#),
        base(replacing: #""at":"2026-11-24T10:00:00.500Z","#, with: ""),
        base(replacing: #""receivedAt":"2026-11-24T10:00:00.000Z""#, with: #""receivedAt":"yesterday""#),
        base(replacing: #""receivedAt":"2026-11-24T10:00:00.000Z""#, with: #""receivedAt":"2026-02-30T10:00:00.000Z""#),
        base(replacing: #""application/json""#, with: "7"),
        base(replacing: #""eventType":"minis.x""#, with: #""eventType":5"#),
        base(replacing: #""consumer":"orders""#, with: #""consumer":null"#),
        base(replacing: #""attempts":["#, with: #""attempts":{"#),
        base + "x",
        String(base.dropLast()),
        base(replacing: #""reason":"max attempts""#, with: "\"reason\":\"max\u{01}attempts\""),
        base(replacing: #""reason":"max attempts""#, with: #""reason":"max\qattempts""#),
        base(replacing: #""dedupKey":"tiktok:e:o1""#, with: #""dedupKey":"\ud83d""#),
        "[]",
        "",
    ]

    @Test(arguments: refusedLines)
    func refusesWhatTheDecoderRefuses(line: String) {
        #expect(Self.decoded(line) == nil)
        #expect(DeadLetter.read(line: Data(line.utf8)) == nil)
    }

    @Test func refusesInvalidUTF8() throws {
        var bytes = Array(Self.base.utf8)
        let position = try #require(bytes.firstIndex(of: UInt8(ascii: "x")))
        bytes[position] = 0xFF
        #expect((try? DeadLetter.decoder.decode(DeadLetter.self, from: Data(bytes))) == nil)
        #expect(DeadLetter.read(line: bytes) == nil)
    }

    /// Found by fuzz-dead-letter-line: a byte that is not UTF-8 in an unknown key, which the
    /// decoder never decodes and so reads past. JSON text is UTF-8 and the writer writes nothing
    /// else; the reader refuses the line, as it refuses any line that is not UTF-8.
    @Test func refusesInvalidUTF8InAnUnknownKey() {
        let line =
            Array(#"{"id":"dl_1","dedupKey":"k","deadLetteredAt":"2026-11-24T10:00:01.000Z","unknown":{""#.utf8) + [0xB4]
            + Array(#"":[1,2.5,null,true]}}"#.utf8)
        #expect(DeadLetter.read(line: line) == nil)
        #expect((try? DeadLetterLine(line, summaryOnly: true)) == nil)
    }

    /// Found by fuzz-dead-letter-line: text that is not JSON (RFC 8259) where JSONDecoder does
    /// not look, in the value of an unknown key: a trailing comma (which Foundation's parsers
    /// take), a number with a leading zero. The reader checks the whole line and refuses them.
    @Test(arguments: [
        base(replacing: #""source":"tiktok","#, with: #""source":"tiktok","unknown":{"x":[1,2.5,null,]},"#),
        base(replacing: #""source":"tiktok","#, with: #""source":"tiktok","unknown":{"x":1,},"#),
        base(replacing: #""source":"tiktok","#, with: #""source":"tiktok","unknown":00,"#),
    ])
    func refusesWhatIsNotJSONWhereTheDecoderDoesNotLook(line: String) {
        #expect(DeadLetter.read(line: Data(line.utf8)) == nil)
    }

    /// Found by fuzz-dead-letter-line: for a key given twice the reader keeps the last value (as
    /// JSONSerialization, Python and JavaScript do), where JSONDecoder keeps the first. The writer
    /// never repeats a key; the index and the full read agree.
    @Test func keepsTheLastValueOfAKeyGivenTwice() throws {
        let line = Self.base(replacing: #""dedupKey":"tiktok:e:o1","#, with: #""dedupKey":"first","dedupKey":"last","#)
        let deadLetter = try #require(DeadLetter.read(line: Data(line.utf8)))
        #expect(deadLetter.dedupKey == "last")
        let entry = try #require(try DeadLetterLine(Array(line.utf8), summaryOnly: true).entry(offset: 0, length: 0))
        #expect(entry.dedupKey == "last")
    }

    /// The index reads only the fields of its entries; they must be the decoder's.
    @Test func indexEntriesHoldTheDecodedFields() throws {
        let directory = try TemporaryDirectory()
        let writer = DeadLetterWriter(directory: directory.path("dead-letters"))
        var random = SplitMix64(state: 0x1DE7)
        var letters: [DeadLetter] = []
        for _ in 0..<300 {
            var letter = Self.deadLetter(&random)
            letter.id = "dl_\(letters.count)_" + letter.id
            letters.append(letter)
        }
        try writer.append(letters, consumer: "orders")
        let (entries, unreadable) = DeadLetterIndex(writer: writer).entries(consumer: "orders")
        #expect(unreadable == 0)
        let lines = try #require(FileManager.default.contents(atPath: writer.path(consumer: "orders")))
            .split(separator: UInt8(ascii: "\n"))
        #expect(entries.count == lines.count)
        for (entry, line) in zip(entries, lines) {
            let reference = try DeadLetter.decoder.decode(DeadLetter.self, from: Data(line))
            #expect(entry.id == reference.id)
            #expect(entry.eventType == reference.eventType)
            #expect(entry.dedupKey == reference.dedupKey)
            #expect(entry.deadLetteredAt == reference.deadLetteredAt)
        }
    }
}
