import Delivery
import Foundation
import FuzzDriver
import Verification

// Fuzzes the dead-letter line reader (`DeadLetterLine`, behind `DeadLetter.read(line:)` and the
// dead-letter index).
//
// Besides "no crash", each run checks what the reader promises: it refuses what is not JSON, and
// reads a line to what `DeadLetter.decoder` (Foundation's `JSONDecoder`) decodes; the
// index's summary of a line agrees with the full read; a line read and written again reads back to
// the same line.

func fuzz(_ input: [UInt8]) {
    let read = DeadLetter.read(line: input)
    // JSONDecoder does not check what it skips (a number `00`, a trailing comma or a byte that is
    // not UTF-8 in an unknown key): what is JSON is for `StrictJSON` to say.
    guard StrictJSON.isValid(input) else {
        precondition(read == nil, "the reader read a line that is not JSON")
        return
    }
    // Where the two may differ by design: a key given twice (the reader keeps the last value,
    // JSONDecoder the first) and values nested more than 64 deep (the scanner's bound).
    if !hasRepeatedKey(input) && nestingDepth(input) <= 64 {
        let decoded = try? DeadLetter.decoder.decode(DeadLetter.self, from: Data(input))
        precondition(read == decoded, "the reader and JSONDecoder disagree")
    }

    let summary = try? DeadLetterLine(input, summaryOnly: true)
    let entry = summary?.entry(offset: 0, length: input.count)
    guard let read else { return }
    guard let entry else { fatalError("a line that reads in full has no index entry") }
    precondition(
        entry.id == read.id && entry.eventType == read.eventType && entry.dedupKey == read.dedupKey
            && entry.deadLetteredAt == read.deadLetteredAt,
        "the index entry differs from the line")

    // Writing rounds times to milliseconds; from then on a line reads and writes back unchanged.
    guard let written = try? DeadLetter.encoder.encode(read) else { fatalError("a line that was read cannot be written") }
    guard let again = DeadLetter.read(line: written) else { fatalError("a written line does not read") }
    guard let rewritten = try? DeadLetter.encoder.encode(again), rewritten == written else {
        fatalError("a written line does not write back the same")
    }
    precondition(again.bodyBytes == read.bodyBytes, "the body changed")
}

/// Whether some object in the JSON document `input` has a key twice (false for what is not JSON).
func hasRepeatedKey(_ input: [UInt8]) -> Bool {
    var repeated = false
    // The scanner reads a value as what the caller expects: a probe that only skips finds out
    // which it is (in time linear in its size), then the value is read for its keys.
    func value(_ scanner: inout JSONScanner) throws(JSONScanner.Invalid) {
        var probe = scanner
        if (try? probe.readObject({ (_: String, scanner: inout JSONScanner) throws(JSONScanner.Invalid) in
            try scanner.skipValue()
        })) != nil {
            var keys = Set<String>()
            try scanner.readObject { key, scanner throws(JSONScanner.Invalid) in
                if !keys.insert(key).inserted { repeated = true }
                try value(&scanner)
            }
            return
        }
        probe = scanner
        if (try? probe.readArray({ (scanner: inout JSONScanner) throws(JSONScanner.Invalid) in try scanner.skipValue() })) != nil {
            try scanner.readArray { scanner throws(JSONScanner.Invalid) in try value(&scanner) }
            return
        }
        _ = try scanner.readScalar()
    }
    guard var scanner = try? JSONScanner(input) else { return false }
    try? value(&scanner)
    return repeated
}

/// How deep arrays and objects nest in `input`, counted on the bytes outside strings.
func nestingDepth(_ input: [UInt8]) -> Int {
    var depth = 0
    var deepest = 0
    var inString = false
    var escaped = false
    for byte in input {
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
        } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
            depth += 1
            deepest = max(deepest, depth)
        } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
            depth -= 1
        }
    }
    return deepest
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("FuzzDeadLetterLine_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
