public import Foundation

/// One line of a dead-letter file, as SPEC.md's Dead letters section defines it.
///
/// Times are RFC 3339 in UTC. `body` holds the exact body when it is valid UTF-8; otherwise
/// `bodyBase64` holds it instead.
public struct DeadLetter: Sendable, Hashable, Codable {
    public struct Attempt: Sendable, Hashable, Codable {
        public var at: Date
        /// The consumer's HTTP status, or `nil` when there was no response.
        public var status: Int?
        /// Set when `status` is `nil`: what went wrong (connection refused, timeout, …).
        public var error: String?
        /// How long the attempt took, from sending to the end of the answer (`nil` for attempts
        /// recorded before durations were kept). Kept in the store's delivery history and shown by
        /// the event log; not part of a dead-letter line, whose format SPEC.md fixes.
        public var durationMs: Int?

        public init(at: Date, status: Int?, error: String?, durationMs: Int? = nil) {
            self.at = at
            self.status = status
            self.error = error
            self.durationMs = durationMs
        }

        /// Set to `true` in an encoder's `userInfo` to write `durationMs` too.
        public static let includeDuration = CodingUserInfoKey(rawValue: "webhook-gateway.attempt-duration")!

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(at, forKey: .at)
            // Both keys are always present, as null when empty.
            try container.encode(status, forKey: .status)
            try container.encode(error, forKey: .error)
            if encoder.userInfo[Self.includeDuration] as? Bool == true {
                try container.encode(durationMs, forKey: .durationMs)
            }
        }
    }

    public var id: String
    public var eventID: String
    public var consumer: String
    public var source: String
    public var eventType: String?
    public var dedupKey: String
    public var receivedAt: Date
    public var deadLetteredAt: Date
    public var reason: String
    public var attempts: [Attempt]
    public var headers: [String: String]
    public var body: String?
    public var bodyBase64: String?
    /// What the event's envelope says, read again from `body` by the gateway before a replay (not
    /// part of the line): a replay that has to store a pruned event again keeps its order lane
    /// and its sandbox flag.
    public var orderID: String?
    public var sandbox = false

    enum CodingKeys: String, CodingKey {
        case id
        case eventID = "eventId"
        case consumer, source, eventType, dedupKey, receivedAt, deadLetteredAt, reason, attempts, headers, body, bodyBase64
    }

    public init(
        id: String,
        eventID: String,
        consumer: String,
        source: String,
        eventType: String?,
        dedupKey: String,
        receivedAt: Date,
        deadLetteredAt: Date,
        reason: String,
        attempts: [Attempt],
        headers: [String: String],
        body: Data
    ) {
        self.id = id
        self.eventID = eventID
        self.consumer = consumer
        self.source = source
        self.eventType = eventType
        self.dedupKey = dedupKey
        self.receivedAt = receivedAt
        self.deadLetteredAt = deadLetteredAt
        self.reason = reason
        self.attempts = attempts
        self.headers = headers
        if let text = String(validating: body, as: UTF8.self) {
            self.body = text
        } else {
            self.bodyBase64 = body.base64EncodedString()
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(eventID, forKey: .eventID)
        try container.encode(consumer, forKey: .consumer)
        try container.encode(source, forKey: .source)
        try container.encode(eventType, forKey: .eventType)
        try container.encode(dedupKey, forKey: .dedupKey)
        try container.encode(receivedAt, forKey: .receivedAt)
        try container.encode(deadLetteredAt, forKey: .deadLetteredAt)
        try container.encode(reason, forKey: .reason)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(headers, forKey: .headers)
        try container.encodeIfPresent(body, forKey: .body)
        try container.encodeIfPresent(bodyBase64, forKey: .bodyBase64)
    }

    /// The exact body bytes, from `body` or `bodyBase64`.
    public var bodyBytes: Data? {
        if let body { return Data(body.utf8) }
        return bodyBase64.flatMap { Data(base64Encoded: $0) }
    }

    /// The encoder for dead-letter lines: one line, RFC 3339 times, sorted keys.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(rfc3339(date))
        }
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseRFC3339(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 time"))
            }
            return date
        }
        return decoder
    }

    /// `2026-11-24T10:00:00.123Z`: UTC, milliseconds.
    public static func rfc3339(_ date: Date) -> String {
        RFC3339.format(date)
    }

    /// Reads an RFC 3339 time, with or without fractional seconds.
    public static func parseRFC3339(_ text: String) -> Date? {
        RFC3339.parse(text)
    }
}
