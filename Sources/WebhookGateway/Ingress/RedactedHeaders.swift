import HTTPTypes

/// Request headers for a log line, with every value that could authenticate a request replaced by
/// `<redacted>`: signature headers of every scheme, `Authorization`, cookies.
enum RedactedHeaders {
    static let redactedNames: Set<String> = [
        "tiktok-signature", "authorization", "proxy-authorization", "cookie", "set-cookie", "webhook-signature", "x-signature",
    ]

    static func describe(_ headers: HTTPFields) -> String {
        headers.map { field in
            let name = field.name.canonicalName
            return "\(name): \(redactedNames.contains(name) ? "<redacted>" : field.value)"
        }.joined(separator: "; ")
    }
}
