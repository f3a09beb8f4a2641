import Foundation
import Verification

/// Reads one JSON value of the configuration, knowing its path for error messages.
struct ConfigurationReader {
    let value: JSONValue
    let path: String
    /// The folder that relative paths are resolved against: the config file's.
    let baseDirectory: URL
    let environment: [String: String]
    /// Where the secret fields met so far are noted; shared by a reader and its children.
    var secretFields = SecretFieldLog()

    func fail(_ problem: String) -> ConfigurationError {
        ConfigurationError(path: path, problem: problem)
    }

    func child(_ value: JSONValue, _ component: String) -> ConfigurationReader {
        let childPath =
            if component.hasPrefix("[") { path + component } else if path.isEmpty { component } else { path + "." + component }
        return ConfigurationReader(
            value: value, path: childPath, baseDirectory: baseDirectory, environment: environment, secretFields: secretFields)
    }

    func object() throws(ConfigurationError) -> ObjectReader {
        guard case .object(let fields) = value else { throw fail("expected an object, found \(value.typeName)") }
        return ObjectReader(fields: fields, reader: self)
    }

    func list() throws(ConfigurationError) -> [ConfigurationReader] {
        guard case .array(let items) = value else { throw fail("expected a list, found \(value.typeName)") }
        return items.enumerated().map { child($1, "[\($0)]") }
    }

    func string() throws(ConfigurationError) -> String {
        guard case .string(let text) = value else { throw fail("expected a string, found \(value.typeName)") }
        return text
    }

    func nonEmptyString() throws(ConfigurationError) -> String {
        let text = try string()
        guard !text.isEmpty else { throw fail("must not be empty") }
        return text
    }

    func integer(in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard case .integer(let number) = value else { throw fail("expected a whole number, found \(value.typeName)") }
        guard let int = Int(exactly: number), range.contains(int) else {
            throw fail("\(number) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return int
    }

    /// A duration of at most ``maximumDuration`` (a larger one is a mistake, and would overflow
    /// the clocks and dates it is added to).
    func duration() throws(ConfigurationError) -> Duration {
        let text = try string()
        guard let duration = Duration(configurationText: text) else {
            throw fail("\(Self.quoted(text)) is not a duration (use a whole number and a unit: 250ms, 5s, 10m, 72h, 7d)")
        }
        guard duration <= Self.maximumDuration else { throw fail("\(Self.quoted(text)) is more than 3650d") }
        return duration
    }

    /// The longest duration any key takes: `3650d`, about ten years.
    static let maximumDuration: Duration = .seconds(3_650 * 86_400)

    /// A path, relative to the config file's folder unless absolute.
    func filePath() throws(ConfigurationError) -> String {
        let text = try nonEmptyString()
        if text.hasPrefix("/") { return text }
        return baseDirectory.appendingPathComponent(text).standardizedFileURL.path
    }

    /// A secret: `env:NAME`, `file:PATH`, `credential:NAME` or a literal (see ``SecretReference``),
    /// resolved now. The field and its reference are noted in ``secretFields``.
    func secret() throws(ConfigurationError) -> Secret {
        let text = try string()
        do {
            let reference = try SecretReference(parsing: text)
            let secret = try reference.resolve(baseDirectory: baseDirectory, environment: environment)
            secretFields.note(path: path, reference: reference)
            return secret
        } catch {
            throw fail("\(error)")
        }
    }

    static func quoted(_ text: String) -> String {
        let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
        return "\"\(shown)\""
    }
}

/// The secret fields a configuration read, by path, with the form of their reference (for the
/// reload's note of which values are fixed until a restart). A reference type so that the
/// readers, which are values, share one log.
final class SecretFieldLog {
    private(set) var fields: [GatewayConfiguration.SecretField] = []

    func note(path: String, reference: SecretReference) {
        fields.append(GatewayConfiguration.SecretField(path: path, reference: reference))
    }
}

/// Reads the fields of one JSON object; ``finish()`` rejects any field that was not read.
struct ObjectReader {
    let fields: [String: JSONValue]
    let reader: ConfigurationReader
    private var read: Set<String> = []

    init(fields: [String: JSONValue], reader: ConfigurationReader) {
        self.fields = fields
        self.reader = reader
    }

    mutating func required<T>(
        _ key: String,
        _ parse: (ConfigurationReader) throws -> T
    ) throws(ConfigurationError) -> T {
        guard let value = try optional(key, parse) else {
            throw reader.child(.null, key).fail("is required")
        }
        return value
    }

    mutating func optional<T>(
        _ key: String,
        _ parse: (ConfigurationReader) throws -> T
    ) throws(ConfigurationError) -> T? {
        read.insert(key)
        guard let value = fields[key], value != .null else { return nil }
        let child = reader.child(value, key)
        do {
            return try parse(child)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw child.fail("\(error)")
        }
    }

    /// Whether the key is present (and not null).
    func has(_ key: String) -> Bool {
        fields[key].map { $0 != .null } ?? false
    }

    /// Fails on the first key (alphabetically) that no one read: a typo must not go unnoticed.
    func finish() throws(ConfigurationError) {
        if let unknown = fields.keys.filter({ !read.contains($0) }).sorted().first {
            throw reader.child(.null, unknown).fail("unknown key")
        }
    }
}

extension Duration {
    /// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
    init?(configurationText text: String) {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 12, let number = Int64(digits) else { return nil }
        switch text.dropFirst(digits.count) {
        case "ms": self = .milliseconds(number)
        case "s": self = .seconds(number)
        case "m": self = .seconds(number * 60)
        case "h": self = .seconds(number * 3_600)
        case "d": self = .seconds(number * 86_400)
        default: return nil
        }
    }
}
