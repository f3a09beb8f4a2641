import Foundation
import SeededRandom
import Testing

@testable import Verification

struct JSONScannerTests {
    /// Reads every top-level member as a scalar (`.other` for objects and arrays), or nil when the document is invalid.
    func members(_ text: String) -> [String: JSONScanner.Scalar]? {
        members(Array(text.utf8))
    }

    func members(_ bytes: [UInt8]) -> [String: JSONScanner.Scalar]? {
        guard var scanner = try? JSONScanner(bytes) else { return nil }
        var result: [String: JSONScanner.Scalar] = [:]
        do {
            try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in result[key] = try scanner.readScalar() }
        } catch {
            return nil
        }
        return result
    }

    @Test func readsScalarsAndEscapes() {
        let read = members(
            #" { "a" : "x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00" , "b":-12, "c":true, "d":false, "e":null, "f":1.5, "g":[1,{"h":2}], "i":{} } "#
        )
        #expect(read?["a"] == .string("x\"y\\z/\u{08}\u{0C}\n\r\té😀"))
        #expect(read?["b"] == .integer("-12"))
        #expect(read?["c"] == .bool(true))
        #expect(read?["d"] == .bool(false))
        #expect(read?["e"] == .null)
        #expect(read?["f"] == .number("1.5"))
        #expect(read?["g"] == .other)
        #expect(read?["i"] == .other)
        #expect(members(#"{"k":"caf\#u{e9}"}"#)?["k"] == .string("caf\u{e9}"))
    }

    @Test(arguments: [
        "", "{", "}", "[]", "\"s\"", "1", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}",
        "{\"a\":1e}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ude00\"}", "{\"a\":\"line\nbreak\"}", "{\"a\":\"unterminated}", "{a:1}", "{\"a\":[1,]}",
        "{\"a\":[1 2]}", "{'a':1}", "{\"a\":1}}",
        String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100),
    ])
    func rejectsInvalidDocuments(text: String) {
        #expect(members(text) == nil, "\(text)")
    }

    /// An integer beyond the range of a Double, which Foundation's parsers refuse, is refused as a
    /// number with a fraction or an exponent is; one just inside is read.
    @Test func rejectsIntegersBeyondTheRangeOfADouble() {
        let beyond = String(repeating: "9", count: 309)
        let inside = String(repeating: "9", count: 308)
        for text in [#"{"a":\#(beyond)}"#, #"{"a":-\#(beyond)}"#, #"{"a":{"b":[\#(beyond)]}}"#] {
            #expect(members(text) == nil, "\(text.prefix(20))")
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8))) == nil)
        }
        #expect(members(#"{"a":-\#(inside)}"#)?["a"] == .integer("-" + inside))
        #expect((try? JSONSerialization.jsonObject(with: Data(#"{"a":\#(inside)}"#.utf8))) != nil)
    }

    @Test func rejectsInvalidUTF8() {
        #expect(
            members([
                UInt8(ascii: "{"), UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\""), UInt8(ascii: ":"), UInt8(ascii: "1"), UInt8(ascii: "}"),
            ]) == nil)
    }

    /// The ASCII check reads eight bytes at a time: a byte that is not UTF-8, or a multi-byte
    /// character, must be noticed at every position, inside the words and in the tail.
    @Test func checksUTF8AtEveryPosition() {
        // Values of 10 to 17 characters put the end of the value in every position of the tail.
        for length in 10..<18 {
            let prefix = Array(#"{"n":12,"key":""#.utf8)
            let document = prefix + Array(repeating: UInt8(ascii: "a"), count: length) + Array(#""}"#.utf8)
            for position in prefix.count..<(prefix.count + length) {
                var invalid = document
                invalid[position] = 0xFF
                #expect(members(invalid) == nil, "0xFF at \(position) of \(document.count)")
                var valid = document
                valid.replaceSubrange(position..<(position + 1), with: Array("é".utf8))
                #expect(members(valid)?["n"] == .integer("12"), "é at \(position) of \(document.count)")
            }
        }
    }

    @Test func copiesTheTextBetweenEscapes() {
        #expect(members(#"{"a":"one\ntwo\tthree\"four\\five\u00e9six"}"#)?["a"] == .string("one\ntwo\tthree\"four\\five\u{e9}six"))
        #expect(members(#"{"a":"\n"}"#)?["a"] == .string("\n"))
        // A control character after an escape is as invalid as before one.
        #expect(members("{\"a\":\"x\\ny\u{01}z\"}") == nil)
        #expect(members("{\"a\":\"x\\ny") == nil)
    }

    /// Foundation's JSONSerialization is an independent parser: on objects, both must agree on
    /// what is valid JSON, for fixed documents and for thousands of seeded random mutations.
    @Test func agreesWithJSONSerialization() {
        let seeds = [
            Vectors.TikTok.body, Vectors.TikTokShop.body, Vectors.NoOrder.body,
            #"{"a":[1,2,{"b":[true,false,null]}],"c":"\u0041\n","d":-0.5e-3,"e":{}}"#,
        ]
        var rng = SplitMix64(state: 7)
        var checked = 0
        for seed in seeds {
            let bytes = Array(seed.utf8)
            for _ in 0..<1_500 {
                var mutated = bytes
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let position = Int.random(in: 0..<mutated.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: mutated[position] = Array(#"{}[]",:0123456789.eE+-tfnul\ "#.utf8).randomElement(using: &rng)!
                    case 1: mutated.remove(at: position)
                    default: mutated.insert(Array(#"{}[]",: 1\"#.utf8).randomElement(using: &rng)!, at: position)
                    }
                    if mutated.isEmpty { break }
                }
                let text = String(decoding: mutated, as: UTF8.self)
                let ours = members(mutated) != nil
                let reference = (try? JSONSerialization.jsonObject(with: Data(mutated))) is [String: Any]
                if ours != reference {
                    // The one accepted difference: Foundation allows trailing commas, which
                    // RFC 8259 does not; the scanner is strict.
                    let trailingComma = text.range(of: #",\s*[\]}]"#, options: .regularExpression) != nil
                    #expect(reference && !ours && trailingComma, "\(text)")
                }
                checked += 1
            }
        }
        #expect(checked > 5_000)
    }
}
