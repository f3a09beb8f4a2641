import Delivery
import Foundation
import SeededRandom
import Testing

/// The hand-written RFC 3339 reader and writer of dead-letter lines, checked against Foundation's
/// ISO 8601 format styles on random instants and against fixed vectors.
struct RFC3339Tests {
    let foundationFormat = Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: true)
        .timeZone(separator: .omitted)

    @Test func fixedVectors() {
        // 2026-11-24T10:00:00Z is 1795514400 (Python: datetime(2026,11,24,10,tzinfo=timezone.utc).timestamp()).
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_795_514_400.123)) == "2026-11-24T10:00:00.123Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(RFC3339.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        #expect(RFC3339.parse("2026-11-24T10:00:00Z") == Date(timeIntervalSince1970: 1_795_514_400))
        #expect(RFC3339.parse("2026-11-24T10:00:00.5Z") == Date(timeIntervalSince1970: 1_795_514_400.5))
        #expect(RFC3339.parse("2026-11-24T12:00:00+02:00") == Date(timeIntervalSince1970: 1_795_514_400))
        #expect(RFC3339.parse("2026-02-30T10:00:00Z") == nil)
        #expect(RFC3339.parse("2026-11-24 10:00:00Z") == nil)
        #expect(RFC3339.parse("yesterday") == nil)
        #expect(RFC3339.parse("2026-11-24T10:00:00.Z") == nil)
    }

    @Test func agreesWithFoundationsCalendarOnRandomInstants() throws {
        // Foundation's ISO 8601 style truncates an instant stored as `ms / 1000` (not exact in
        // binary) to the millisecond below, so the reference is its Gregorian calendar on the
        // whole seconds, with the milliseconds appended.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var generator = SplitMix64(state: 3_339)
        for _ in 0..<20_000 {
            // Whole milliseconds between 1900 and 2200.
            let milliseconds = Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &generator)
            let (seconds, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1_000)
            let (wholeSeconds, fraction) = remainder < 0 ? (seconds - 1, remainder + 1_000) : (seconds, remainder)
            let parts = calendar.dateComponents(
                [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(wholeSeconds)))
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
                parts.second!, Int(fraction))
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
            #expect(RFC3339.format(date) == expected, "\(milliseconds)")
            let parsed = try #require(RFC3339.parse(expected))
            #expect(Int64((parsed.timeIntervalSince1970 * 1_000).rounded()) == milliseconds, "\(expected)")
            // Foundation reads the same instant (to the millisecond).
            let foundation = try Date(expected, strategy: foundationFormat)
            #expect(abs(foundation.timeIntervalSince(parsed)) < 0.000_5, "\(expected)")
        }
    }
}
