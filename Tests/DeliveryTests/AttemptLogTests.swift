import Delivery
import Foundation
import SeededRandom
import Testing

/// The hand-written attempt log of a delivery row, held to `JSONEncoder` (the dead-letter encoder
/// with durations) as the reference: the same JSON values, and it reads back as written.
struct AttemptLogTests {
    static let reference: JSONEncoder = {
        let encoder = DeadLetter.encoder
        encoder.userInfo[DeadLetter.Attempt.includeDuration] = true
        return encoder
    }()

    static func randomText(using generator: inout SplitMix64) -> String {
        let pieces = [
            "connection refused", "timeout", "\"quoted\"", "back\\slash", "line\nbreak", "\t", "\u{1}", "é", "😀", "</script>", "/",
        ]
        return (0..<Int.random(in: 1...4, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    @Test func matchesTheReferenceEncoderAndReadsBack() throws {
        var generator = SplitMix64(state: 2_026)
        #expect(AttemptLog.encode([]) == "[]")
        for _ in 0..<2_000 {
            let attempts = (0..<Int.random(in: 1...5, using: &generator)).map { _ in
                let answered = Bool.random(using: &generator)
                return DeadLetter.Attempt(
                    at: Date(
                        timeIntervalSince1970: Double(Int64.random(in: 1_700_000_000_000...1_900_000_000_000, using: &generator)) / 1_000),
                    status: answered ? Int.random(in: 100...599, using: &generator) : nil,
                    error: answered ? nil : Self.randomText(using: &generator),
                    durationMs: Bool.random(using: &generator) ? Int.random(in: 0...100_000, using: &generator) : nil)
            }
            let written = AttemptLog.encode(attempts)
            let expected = try Self.reference.encode(attempts)
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(written.utf8)) as? NSArray)
            let theirs = try #require(try JSONSerialization.jsonObject(with: expected) as? NSArray)
            #expect(ours == theirs, "\(written) against \(String(decoding: expected, as: UTF8.self))")
            #expect(try AttemptLog.decode(written) == attempts)
        }
    }
}
