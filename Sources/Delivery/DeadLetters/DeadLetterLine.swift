public import Foundation
package import Verification

/// Reads dead-letter lines without `JSONDecoder`.
///
/// A replay of 100,000 dead letters spent most of its time decoding lines with `JSONDecoder`,
/// once to index them and once to load them. This reader walks a line once with the envelope's
/// ``JSONScanner`` and accepts what ``DeadLetter/decoder`` accepts: the same keys with the same
/// types, RFC 3339 times, `null` or absence for the optional fields, unknown keys skipped (their
/// values still checked against the JSON grammar), nothing after the object. A key given twice
/// keeps its last value (JSONDecoder keeps the first; the writer never repeats a key). Package
/// access for the fuzz target (`Fuzz/`), which checks these promises.
package struct DeadLetterLine {
    var id: String?
    var eventID: String?
    var consumer: String?
    var source: String?
    var eventType: String?
    var dedupKey: String?
    var receivedAt: Date?
    var deadLetteredAt: Date?
    var reason: String?
    var attempts: [DeadLetter.Attempt]?
    var headers: [String: String]?
    var body: String?
    var bodyBase64: String?

    package typealias Invalid = JSONScanner.Invalid

    /// Reads a line. With `summaryOnly`, only the fields of a ``DeadLetterIndex/Entry`` are read
    /// and every other value is skipped (checked as JSON, not as a field).
    package init(_ bytes: [UInt8], summaryOnly: Bool) throws(Invalid) {
        var line = DeadLetterLine()
        var scanner = try JSONScanner(bytes)
        try scanner.readDocument { key, scanner throws(Invalid) in
            switch key {
            case "id": line.id = try Self.string(&scanner)
            case "eventType": line.eventType = try Self.optionalString(&scanner)
            case "dedupKey": line.dedupKey = try Self.string(&scanner)
            case "deadLetteredAt": line.deadLetteredAt = try Self.date(&scanner)
            case _ where summaryOnly: try scanner.skipValue()
            case "eventId": line.eventID = try Self.string(&scanner)
            case "consumer": line.consumer = try Self.string(&scanner)
            case "source": line.source = try Self.string(&scanner)
            case "receivedAt": line.receivedAt = try Self.date(&scanner)
            case "reason": line.reason = try Self.string(&scanner)
            case "attempts": line.attempts = try Self.attempts(&scanner)
            case "headers": line.headers = try Self.headers(&scanner)
            case "body": line.body = try Self.optionalString(&scanner)
            case "bodyBase64": line.bodyBase64 = try Self.optionalString(&scanner)
            default: try scanner.skipValue()
            }
        }
        self = line
    }

    private init() {}

    /// The index entry of the line, if it has the fields an entry needs.
    package func entry(offset: Int, length: Int) -> DeadLetterIndex.Entry? {
        guard let id, let dedupKey, let deadLetteredAt else { return nil }
        return DeadLetterIndex.Entry(
            id: id, eventType: eventType, dedupKey: dedupKey, deadLetteredAt: deadLetteredAt, offset: offset, length: length)
    }

    /// The dead letter, if every required field was there.
    var deadLetter: DeadLetter? {
        guard let id, let eventID, let consumer, let source, let dedupKey, let receivedAt, let deadLetteredAt, let reason,
            let attempts, let headers
        else { return nil }
        var deadLetter = DeadLetter(
            id: id, eventID: eventID, consumer: consumer, source: source, eventType: eventType, dedupKey: dedupKey,
            receivedAt: receivedAt, deadLetteredAt: deadLetteredAt, reason: reason, attempts: attempts, headers: headers,
            body: Data())
        deadLetter.body = body
        deadLetter.bodyBase64 = bodyBase64
        return deadLetter
    }

    private static func string(_ scanner: inout JSONScanner) throws(Invalid) -> String {
        guard case .string(let text) = try scanner.readScalar() else { throw Invalid() }
        return text
    }

    private static func optionalString(_ scanner: inout JSONScanner) throws(Invalid) -> String? {
        switch try scanner.readScalar() {
        case .string(let text): return text
        case .null: return nil
        default: throw Invalid()
        }
    }

    private static func date(_ scanner: inout JSONScanner) throws(Invalid) -> Date {
        guard let date = RFC3339.parse(try string(&scanner)) else { throw Invalid() }
        return date
    }

    private static func headers(_ scanner: inout JSONScanner) throws(Invalid) -> [String: String] {
        var headers: [String: String] = [:]
        try scanner.readObject { name, scanner throws(Invalid) in
            headers[name] = try string(&scanner)
        }
        return headers
    }

    private static func attempts(_ scanner: inout JSONScanner) throws(Invalid) -> [DeadLetter.Attempt] {
        var attempts: [DeadLetter.Attempt] = []
        try scanner.readArray { scanner throws(Invalid) in
            var at: Date?
            var status: Int?
            var error: String?
            try scanner.readObject { key, scanner throws(Invalid) in
                switch key {
                case "at": at = try date(&scanner)
                case "status":
                    switch try scanner.readScalar() {
                    case .integer(let text):
                        guard let value = Int(text) else { throw Invalid() }
                        status = value
                    case .null: status = nil
                    default: throw Invalid()
                    }
                case "error": error = try optionalString(&scanner)
                default: try scanner.skipValue()
                }
            }
            guard let at else { throw Invalid() }
            attempts.append(DeadLetter.Attempt(at: at, status: status, error: error))
        }
        return attempts
    }
}

extension DeadLetter {
    /// The dead letter of one line of a dead-letter file, or `nil` if the line is not one.
    public static func read(line: some Sequence<UInt8>) -> DeadLetter? {
        (try? DeadLetterLine(Array(line), summaryOnly: false))?.deadLetter
    }
}
