package import Foundation
import Verification

/// What `check-config` says about the configuration's secrets: which are missing and which are
/// obviously weak. A finding names the field and the reference (`env:NAME`, `file:PATH`), never
/// the secret's value.
///
/// Missing: an `env:` variable that is not set or empty, a `file:` or `credential:` that cannot be
/// read or is empty (resolved by ``SecretReference``, as the configuration does).
/// Weak: a literal secret written into the configuration file, a secret file that other users
/// can read, a value shorter than 16 bytes or with fewer than 6 distinct characters, a value that
/// looks like a placeholder (`changeme`, `password`, `example`, …), and one value used for two
/// different fields (a consumer signing secret equal to a TikTok secret lets that consumer forge
/// TikTok requests).
package struct SecretAudit {
    package struct Finding: Sendable, Hashable, CustomStringConvertible {
        package enum Kind: String, Sendable {
            case missing
            case weak
        }

        package var kind: Kind
        package var path: String
        package var problem: String

        package var description: String { "\(kind.rawValue) secret: \(path): \(problem)" }
    }

    static let minimumLength = 16
    static let placeholders = ["changeme", "change-me", "change_me", "password", "example", "placeholder", "dummy", "xxxxxx", "123456"]

    /// Audits the secrets of the configuration document `data`.
    package static func audit(data: Data, baseDirectory: URL, environment: [String: String]) -> [Finding] {
        guard let document = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(let root) = document else {
            return []
        }
        var locations: [(path: String, reference: String, checkStrength: Bool)] = []
        if case .object(let admin)? = root["admin"], case .string(let token)? = admin["token"] {
            locations.append(("admin.token", token, true))
        }
        if case .array(let sources)? = root["sources"] {
            for (index, source) in sources.enumerated() {
                guard case .object(let fields) = source else { continue }
                if case .array(let secrets)? = fields["secrets"] {
                    for (secretIndex, secret) in secrets.enumerated() {
                        if case .string(let text) = secret { locations.append(("sources[\(index)].secrets[\(secretIndex)]", text, true)) }
                    }
                }
                // The app key is an identifier more than a secret: only whether it resolves.
                if case .string(let text)? = fields["appKey"] { locations.append(("sources[\(index)].appKey", text, false)) }
            }
        }
        if case .array(let consumers)? = root["consumers"] {
            for (index, consumer) in consumers.enumerated() {
                if case .object(let fields) = consumer, case .string(let text)? = fields["signingSecret"] {
                    locations.append(("consumers[\(index)].signingSecret", text, true))
                }
            }
        }

        var findings: [Finding] = []
        var seen: [[UInt8]: String] = [:]
        for location in locations {
            let resolved = resolve(location.reference, baseDirectory: baseDirectory, environment: environment)
            switch resolved {
            case .missing(let problem):
                findings.append(Finding(kind: .missing, path: location.path, problem: problem))
                continue
            case .value(let bytes, let origin):
                if let other = seen[bytes] {
                    findings.append(Finding(kind: .weak, path: location.path, problem: "the same value as \(other)"))
                } else {
                    seen[bytes] = location.path
                }
                guard location.checkStrength else { continue }
                if let warning = origin {
                    findings.append(Finding(kind: .weak, path: location.path, problem: warning))
                }
                let value = location.path.hasSuffix("signingSecret") ? signingKeyBytes(bytes) : bytes
                for problem in weaknesses(of: value) {
                    findings.append(Finding(kind: .weak, path: location.path, problem: problem))
                }
            }
        }
        return findings
    }

    private enum Resolved {
        case missing(String)
        /// The bytes, and a warning about where they came from.
        case value([UInt8], origin: String?)
    }

    /// Resolves as the configuration does (``SecretReference``), adding where the value came from
    /// when that is a weakness: a literal, or a file that every user can read.
    private static func resolve(_ text: String, baseDirectory: URL, environment: [String: String]) -> Resolved {
        let secret: Secret
        let path: String?
        let reference: SecretReference
        do {
            reference = try SecretReference(parsing: text)
            secret = try reference.resolve(baseDirectory: baseDirectory, environment: environment)
            path = try reference.filePath(baseDirectory: baseDirectory, environment: environment)
        } catch {
            return .missing("\(error)")
        }
        if reference.form == .literal {
            return .value(secret.bytes, origin: "written literally into the configuration file; use env:, file: or credential:")
        }
        var origin: String?
        if let path, isReadableByEveryone(path) {
            origin = "secret file \(path) is readable by every user (chmod 600 or 640)"
        }
        return .value(secret.bytes, origin: origin)
    }

    /// Whether the file's own mode (not a link's: a mounted Kubernetes Secret is links into
    /// `..data/`) lets every user read it.
    private static func isReadableByEveryone(_ path: String) -> Bool {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: target))?[.posixPermissions] as? Int else { return false }
        return mode & 0o004 != 0
    }

    /// A Standard Webhooks secret's key bytes (after `whsec_`, base64-decoded), when it is one.
    private static func signingKeyBytes(_ bytes: [UInt8]) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("whsec_"), let key = Data(base64Encoded: String(text.dropFirst(6))) else { return bytes }
        return Array(key)
    }

    static func weaknesses(of value: [UInt8]) -> [String] {
        var problems: [String] = []
        if value.count < minimumLength { problems.append("shorter than \(minimumLength) bytes") }
        if Set(value).count < 6 { problems.append("fewer than 6 distinct characters") }
        let lowered = String(decoding: value, as: UTF8.self).lowercased()
        if placeholders.contains(where: { lowered.contains($0) }) { problems.append("looks like a placeholder") }
        return problems
    }
}
