public import Foundation

/// When a failed delivery is tried again, and when it gives up.
///
/// The delay before attempt `n + 1` is `initialDelay · 2^(n−1)`, capped at `maxDelay`, with
/// "equal jitter": a uniformly random point in the upper half of that, so that a consumer coming
/// back is not hit by every retry at the same instant, while a retry never comes much earlier than
/// the schedule. A consumer's `Retry-After` replaces the computed delay (still capped at
/// `maxDelay`, which the operator set as the longest acceptable wait).
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var initialDelay: Duration
    public var maxDelay: Duration

    public init(maxAttempts: Int, initialDelay: Duration, maxDelay: Duration) {
        self.maxAttempts = maxAttempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
    }

    /// The un-jittered delay after the `attempt`-th failure (1-based).
    public func baseDelay(afterAttempt attempt: Int) -> Duration {
        let exponent = max(0, min(attempt - 1, 62))
        let initial = Double(initialDelay.milliseconds)
        let scaled = initial * pow(2, Double(exponent))
        let capped = min(scaled, Double(maxDelay.milliseconds))
        return .milliseconds(Int64(capped))
    }

    /// The delay after the `attempt`-th failure: jittered backoff, or the consumer's `Retry-After`.
    public func delay(
        afterAttempt attempt: Int,
        retryAfter: Duration?,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        if let retryAfter {
            return min(max(retryAfter, .zero), maxDelay)
        }
        let base = baseDelay(afterAttempt: attempt).milliseconds
        let half = base / 2
        guard base - half > 0 else { return .milliseconds(base) }
        return .milliseconds(half + Int64.random(in: 0...(base - half), using: &generator))
    }

    public func delay(afterAttempt attempt: Int, retryAfter: Duration?) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, retryAfter: retryAfter, using: &generator)
    }
}

/// What one attempt's result means for the delivery.
public enum AttemptClass: Sendable, Hashable {
    case delivered
    /// Network error, timeout, 408, 425, 429 or 5xx.
    case retryable
    /// Any other status: the consumer refused this event, and trying again will not help.
    case permanent

    public init(status: Int?) {
        guard let status else {
            self = .retryable
            return
        }
        switch status {
        case 200..<300: self = .delivered
        case 408, 425, 429, 500..<600: self = .retryable
        default: self = .permanent
        }
    }
}

/// The `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110, section 10.2.3).
public enum RetryAfter {
    /// The wait the header asks for, measured from `now`; `nil` if it does not parse. A date in the
    /// past means no wait.
    public static func parse(_ value: String, now: Date) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            guard let seconds = Int64(text) else { return nil }
            return .seconds(seconds)
        }
        guard let date = httpDate(text) else { return nil }
        let interval = date.timeIntervalSince(now)
        return interval <= 0 ? .zero : .milliseconds(Int64((interval * 1_000).rounded(.up)))
    }

    /// Parses the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms
    /// that recipients must accept (RFC 850 and asctime).
    static func httpDate(_ text: String) -> Date? {
        // asctime pads the day with a space ("Nov  6"); one space between fields is enough here.
        let text = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for format in ["EEE, dd MMM yyyy HH:mm:ss 'GMT'", "EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
