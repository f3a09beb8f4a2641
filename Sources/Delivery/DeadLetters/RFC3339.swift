public import Foundation

/// RFC 3339 times as dead-letter lines write them: `2026-11-24T10:00:00.123Z` (UTC, milliseconds).
///
/// Formatting and reading that one layout by hand is much faster than Foundation's ISO 8601 format
/// styles, which matters when a replay reads a hundred thousand lines. Any other RFC 3339 spelling
/// (another offset, no fraction, lowercase) is read by Foundation.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        // To the nearest millisecond: the inverse of `milliseconds / 1000` even when that division
        // was not exact in binary.
        let milliseconds = Int64((date.timeIntervalSince1970 * 1_000).rounded())
        let (days, dayMilliseconds) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        let (day, inDay) = dayMilliseconds < 0 ? (days - 1, dayMilliseconds + 86_400_000) : (days, dayMilliseconds)
        let (year, month, dayOfMonth) = civil(fromDays: day)
        var text = ""
        text.reserveCapacity(24)
        func append(_ value: Int64, width: Int) {
            let digits = String(value)
            if digits.count < width { text += String(repeating: "0", count: width - digits.count) }
            text += digits
        }
        append(year, width: 4)
        text += "-"
        append(month, width: 2)
        text += "-"
        append(dayOfMonth, width: 2)
        text += "T"
        append(inDay / 3_600_000, width: 2)
        text += ":"
        append(inDay / 60_000 % 60, width: 2)
        text += ":"
        append(inDay / 1_000 % 60, width: 2)
        text += "."
        append(inDay % 1_000, width: 3)
        text += "Z"
        return text
    }

    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        if bytes.count >= 20, bytes[10] == UInt8(ascii: "T"), bytes.last == UInt8(ascii: "Z") {
            // The layout the gateway writes: read here, and a bad value (February 30) is an error.
            return parseUTC(bytes)
        }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }

    /// `YYYY-MM-DDTHH:MM:SS[.f…]Z`, or nil for anything else.
    static func parseUTC(_ bytes: [UInt8]) -> Date? {
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var fraction: Int64 = 0
        var fractionDigits = 0
        if bytes.count > 20 {
            fractionDigits = bytes.count - 21
            guard bytes[19] == UInt8(ascii: "."), (1...9).contains(fractionDigits), let digits = number(20..<(bytes.count - 1))
            else { return nil }
            fraction = digits
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        guard civil(fromDays: days) == (year, month, day) else { return nil }  // e.g. February 30
        let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
        if fractionDigits <= 3 {
            var milliseconds = fraction
            for _ in fractionDigits..<3 { milliseconds *= 10 }
            return Date(timeIntervalSince1970: Double(seconds * 1_000 + milliseconds) / 1_000)
        }
        var scale: Int64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        return Date(timeIntervalSince1970: Double(seconds) + Double(fraction) / Double(scale))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
