/// Why a ``SecretReference`` could not be read or resolved.
///
/// The description names the reference (a variable, a path, a credential name), never a value,
/// and not the field: the configuration reader puts the field's path in front. A file that cannot
/// be read keeps the underlying error as ``cause``; two errors are equal by what they say.
package struct SecretReferenceError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case missingName(prefix: String, needs: String)
        case credentialNameNotPlain
        case credentialsDirectoryNotSet
        case variableNotSet(String)
        case unreadable(String)
        case empty(String)
    }

    private let code: Code
    /// The I/O error behind ``unreadable(_:cause:)``.
    let cause: (any Error)?

    private init(_ code: Code, cause: (any Error)? = nil) {
        self.code = code
        self.cause = cause
    }

    /// `env:`, `file:` or `credential:` with nothing after it.
    static func missingName(_ prefix: String, _ needs: String) -> Self { Self(.missingName(prefix: prefix, needs: needs)) }
    /// `credential:` with a name that is not a plain file name.
    static var credentialNameNotPlain: Self { Self(.credentialNameNotPlain) }
    /// `credential:` without `CREDENTIALS_DIRECTORY` in the environment.
    static var credentialsDirectoryNotSet: Self { Self(.credentialsDirectoryNotSet) }
    static func variableNotSet(_ name: String) -> Self { Self(.variableNotSet(name)) }
    /// `what` is "secret file PATH" or "credential NAME".
    static func unreadable(_ what: String, cause: any Error) -> Self { Self(.unreadable(what), cause: cause) }
    /// `what` is "environment variable NAME", "secret file PATH", "credential NAME" or "the literal secret".
    static func empty(_ what: String) -> Self { Self(.empty(what)) }

    package var description: String {
        switch code {
        case .missingName(let prefix, let needs):
            "\"\(prefix)\" needs \(needs)"
        case .credentialNameNotPlain:
            "\"credential:\" needs a plain file name (no \"/\", not \".\" or \"..\")"
        case .credentialsDirectoryNotSet:
            "\"credential:\" needs the environment variable \(SecretReference.credentialsDirectoryVariable) "
                + "(set by systemd's LoadCredential=), which is not set"
        case .variableNotSet(let name):
            "environment variable \(name) is not set"
        case .unreadable(let what):
            "cannot read \(what)"
        case .empty(let what):
            "\(what) is empty"
        }
    }

    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    package func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
