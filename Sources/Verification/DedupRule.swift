/// A `dedup.keys` rule: the events it applies to and the fields their key is made of (besides
/// the event type, which every key holds).
///
/// For example `{"events": ["minis.subscription.*"], "fields": ["event", "content.order_id",
/// "create_time"]}` keys each subscription event by its order and its creation time, so the twelve
/// renewals of one subscription are twelve events while a retried renewal is one. The first rule
/// whose pattern matches an event's type wins; an event that lacks one of the rule's fields (or
/// whose field is not a string, number or boolean) is keyed by its body's SHA-256, because when
/// the business key is not certain the gateway delivers rather than drops.
public struct DedupRule: Sendable, Hashable {
    public let events: [EventPattern]
    public let fields: [Field]

    public init(events: [EventPattern], fields: [Field]) {
        self.events = events
        self.fields = fields
    }

    /// Whether the rule applies to events of type `eventType`.
    public func applies(to eventType: String) -> Bool {
        events.contains { $0.matches(eventType) }
    }

    /// A field a key can be made of.
    public enum Field: Sendable, Hashable, CustomStringConvertible {
        /// A member of the envelope itself (`event`, `create_time`, `type`, `tts_notification_id`, …).
        case envelope(String)
        /// A member of the inner object: the JSON string `content` (tiktok) or the object `data`
        /// (tiktok-shop), named `content.X` or `data.X`.
        case inner(container: String, name: String)

        /// The envelope fields a rule may name, as TikTok documents them.
        public static let envelopeNames = [
            "event", "create_time", "client_key", "user_openid",
            "type", "shop_id", "timestamp", "tts_notification_id",
        ]

        /// The field named `name` in a rule, or `nil` when there is no such field: a name from
        /// ``envelopeNames``, or `content.X` / `data.X` with a non-empty `X` (one level: the inner
        /// object's own members).
        public init?(_ name: String) {
            if Self.envelopeNames.contains(name) {
                self = .envelope(name)
                return
            }
            for container in ["content", "data"] where name.hasPrefix(container + ".") {
                let member = String(name.dropFirst(container.count + 1))
                guard !member.isEmpty, !member.contains(".") else { return nil }
                self = .inner(container: container, name: member)
                return
            }
            return nil
        }

        public var description: String {
            switch self {
            case .envelope(let name): name
            case .inner(let container, let name): container + "." + name
            }
        }
    }
}

/// An event pattern: an exact event name, or a prefix ending in `*` (`*` alone matches all).
public struct EventPattern: Sendable, Hashable, CustomStringConvertible {
    private let text: String
    private let isPrefix: Bool

    /// `nil` unless `pattern` has no `*`, or one `*` at its end.
    public init?(_ pattern: String) {
        let stars = pattern.filter { $0 == "*" }.count
        if stars == 0 {
            text = pattern
            isPrefix = false
        } else if stars == 1 && pattern.hasSuffix("*") {
            text = String(pattern.dropLast())
            isPrefix = true
        } else {
            return nil
        }
    }

    public func matches(_ eventType: String) -> Bool {
        isPrefix ? eventType.hasPrefix(text) : eventType == text
    }

    public var description: String { isPrefix ? text + "*" : text }
}

extension DedupKey {
    /// The key a ``DedupRule`` makes: `<source>:<event type>:<field>=<value>:…` in the rule's
    /// field order, each part percent-encoded. The event type is always in it, so two events of
    /// different types are never one (a `minis.subscription.create` and a `.renew` of one order
    /// in one second stay two events, whatever the rule names), and only one rule applies to a
    /// type (the first that matches). The raw `=` tells it from the other forms, whose parts
    /// have theirs encoded.
    static func fields(source: String, eventType: String, values: [(DedupRule.Field, String)]) -> DedupKey {
        var text = percentEncoded(source) + ":" + percentEncoded(eventType)
        for (field, value) in values {
            text += ":" + percentEncoded(field.description) + "=" + percentEncoded(value)
        }
        return DedupKey(rawValue: text)
    }
}
