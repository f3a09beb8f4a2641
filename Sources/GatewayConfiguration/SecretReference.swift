package import Foundation
package import Verification

/// Where a secret comes from, as the configuration and the developer tools write it:
///
/// - `env:NAME`: the environment variable `NAME`, read once (a running process's environment
///   cannot change, so a reload sees the value the process started with);
/// - `file:PATH`: the file's contents, relative to the configuration file's folder unless absolute;
/// - `credential:NAME`: the file `NAME` in the folder named by `CREDENTIALS_DIRECTORY` (systemd's
///   `LoadCredential=`); `NAME` is a plain file name;
/// - anything else: the text itself (a literal).
///
/// A file's trailing line break (`\n` or `\r\n`, once) is trimmed, and nothing else: a secret is
/// bytes, and a space may belong to it. `file:` and `credential:` are read again by every
/// ``resolve(baseDirectory:environment:)``, so a reload (SIGHUP) picks up a rotated file.
///
/// ```swift
/// let reference = try SecretReference(parsing: "credential:admin-token")
/// let token = try reference.resolve(baseDirectory: configFolder, environment: ProcessInfo.processInfo.environment)
/// ```
///
/// `description` shows the reference (`env:NAME`, `file:PATH`, `credential:NAME`, or `a literal`),
/// never a literal's text.
package struct SecretReference: Sendable, Hashable, CustomStringConvertible {
    package enum Form: Sendable, Hashable {
        case environment(name: String)
        case file(path: String)
        case credential(name: String)
        case literal
    }

    /// The environment variable that names systemd's credentials folder.
    static let credentialsDirectoryVariable = "CREDENTIALS_DIRECTORY"

    package let form: Form
    /// The text of a literal; empty for the other forms.
    private let literal: Secret

    /// Reads a reference; fails on a prefix without a name or path, and on a credential name that
    /// is not a plain file name.
    package init(parsing text: String) throws(SecretReferenceError) {
        var literal = Secret("")
        if text.hasPrefix("env:") {
            let name = String(text.dropFirst(4))
            guard !name.isEmpty else { throw .missingName("env:", "a variable name") }
            form = .environment(name: name)
        } else if text.hasPrefix("file:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw .missingName("file:", "a path") }
            form = .file(path: path)
        } else if text.hasPrefix("credential:") {
            let name = String(text.dropFirst(11))
            guard !name.isEmpty else { throw .missingName("credential:", "a credential name") }
            guard !name.contains("/"), name != ".", name != "..", !name.contains("\0") else {
                throw .credentialNameNotPlain
            }
            form = .credential(name: name)
        } else {
            form = .literal
            literal = Secret(text)
        }
        self.literal = literal
    }

    package var description: String {
        switch form {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        case .credential(let name): "credential:\(name)"
        case .literal: "a literal"
        }
    }

    /// Whether a reload reads the value again (`file:` and `credential:`); `env:` is fixed until
    /// a restart, and a literal changes with the configuration file.
    package var isReadAgainOnReload: Bool {
        switch form {
        case .file, .credential: true
        case .environment, .literal: false
        }
    }

    /// The file that holds the secret (`file:` and `credential:`), or nil for the other forms.
    func filePath(baseDirectory: URL, environment: [String: String]) throws(SecretReferenceError) -> String? {
        switch form {
        case .file(let path):
            return path.hasPrefix("/") ? path : baseDirectory.appendingPathComponent(path).standardizedFileURL.path
        case .credential(let name):
            guard let directory = environment[Self.credentialsDirectoryVariable], !directory.isEmpty else {
                throw .credentialsDirectoryNotSet
            }
            return URL(fileURLWithPath: directory).appendingPathComponent(name).path
        case .environment, .literal:
            return nil
        }
    }

    /// The secret's value now. Fails when it cannot be read or is empty; the error names the
    /// reference, never the value.
    package func resolve(baseDirectory: URL, environment: [String: String]) throws(SecretReferenceError) -> Secret {
        let bytes: [UInt8]
        switch form {
        case .environment(let name):
            guard let value = environment[name] else { throw .variableNotSet(name) }
            guard !value.isEmpty else { throw .empty("environment variable \(name)") }
            bytes = Array(value.utf8)
        case .file, .credential:
            guard let path = try filePath(baseDirectory: baseDirectory, environment: environment) else { preconditionFailure() }
            let what = if case .credential(let name) = form { "credential \(name)" } else { "secret file \(path)" }
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw .unreadable(what, cause: error)
            }
            bytes = Self.trimmingLineBreak(Array(data))
            guard !bytes.isEmpty else { throw .empty(what) }
        case .literal:
            guard !literal.isEmpty else { throw .empty("the literal secret") }
            bytes = literal.bytes
        }
        return Secret(bytes: bytes)
    }

    /// `bytes` without one trailing `\n` or `\r\n` (as `echo` and editors leave them).
    static func trimmingLineBreak(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        if bytes.last == UInt8(ascii: "\n") {
            bytes.removeLast()
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        }
        return bytes
    }
}
