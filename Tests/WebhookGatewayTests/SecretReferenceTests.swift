import ArgumentParser
import Foundation
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// `env:`, `file:`, `credential:` and literal secrets, read the same way by the configuration, the
/// secret audit of `check-config` and the signing tools.
struct SecretReferenceTests {
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    func withAdminToken(_ reference: String) -> [String: Any] {
        var document = ConfigurationTests.document()
        document["admin"] = ["token": reference]
        return document
    }

    func parse(_ document: [String: Any], environment: [String: String], base: URL = ConfigurationTests.base)
        throws(ConfigurationError) -> GatewayConfiguration
    {
        let data = try! JSONSerialization.data(withJSONObject: document)
        return try GatewayConfiguration.parse(data: data, baseDirectory: base, environment: environment)
    }

    func error(_ document: [String: Any], environment: [String: String]) -> String {
        do {
            _ = try parse(document, environment: environment)
            Issue.record("expected a configuration error")
            return ""
        } catch {
            return error.description
        }
    }

    @Test func credentialReadsTheFileInTheCredentialsDirectory() throws {
        let credentials = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        // As systemd's LoadCredential= leaves it: a file per credential, here with the newline an editor adds.
        try "token-from-a-systemd-credential\n".write(
            to: credentials.appendingPathComponent("admin-token"), atomically: true, encoding: .utf8)
        var environment = ConfigurationTests.environment
        environment["CREDENTIALS_DIRECTORY"] = credentials.path
        let configuration = try parse(withAdminToken("credential:admin-token"), environment: environment)
        #expect(configuration.admin.token.text == "token-from-a-systemd-credential")
        #expect(configuration.secretFields.contains { $0.path == "admin.token" && $0.reference.form == .credential(name: "admin-token") })
    }

    @Test(arguments: [
        ("credential:", #"admin.token: "credential:" needs a credential name"#),
        ("credential:../admin-token", #"admin.token: "credential:" needs a plain file name (no "/", not "." or "..")"#),
        ("credential:sub/admin-token", #"admin.token: "credential:" needs a plain file name (no "/", not "." or "..")"#),
        ("credential:/etc/passwd", #"admin.token: "credential:" needs a plain file name (no "/", not "." or "..")"#),
        ("credential:.", #"admin.token: "credential:" needs a plain file name (no "/", not "." or "..")"#),
        ("credential:..", #"admin.token: "credential:" needs a plain file name (no "/", not "." or "..")"#),
    ])
    func credentialNamesMustBePlainFileNames(reference: String, expected: String) throws {
        let credentials = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        var environment = ConfigurationTests.environment
        environment["CREDENTIALS_DIRECTORY"] = credentials.path
        #expect(error(withAdminToken(reference), environment: environment) == expected)
    }

    @Test func credentialWithoutTheCredentialsDirectoryNamesTheField() {
        var document = ConfigurationTests.document()
        var sources = document["sources"] as! [[String: Any]]
        sources[1]["appKey"] = "credential:tiktok-shop-app-key"
        document["sources"] = sources
        #expect(
            error(document, environment: ConfigurationTests.environment)
                == #"sources[1].appKey: "credential:" needs the environment variable CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=), which is not set"#
        )
    }

    @Test func aMissingOrEmptyCredentialNamesTheFieldAndTheCredential() throws {
        let credentials = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        try "\n".write(to: credentials.appendingPathComponent("empty"), atomically: true, encoding: .utf8)
        var environment = ConfigurationTests.environment
        environment["CREDENTIALS_DIRECTORY"] = credentials.path
        #expect(error(withAdminToken("credential:absent"), environment: environment) == "admin.token: cannot read credential absent")
        #expect(error(withAdminToken("credential:empty"), environment: environment) == "admin.token: credential empty is empty")
    }

    /// One rule for every reader: a trailing `\n` or `\r\n` goes, once; nothing else does.
    @Test(arguments: [
        ("line-ending-vector-0001\n", "line-ending-vector-0001"),
        ("line-ending-vector-0001\r\n", "line-ending-vector-0001"),
        ("line-ending-vector-0001\n\n", "line-ending-vector-0001\n"),
        ("line-ending-vector-0001\r", "line-ending-vector-0001\r"),
        ("line-ending-vector-0001 ", "line-ending-vector-0001 "),
    ])
    func fileSecretsLoseOneTrailingLineBreakEverywhere(contents: String, expected: String) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("secret")
        try Data(contents.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)

        // The configuration (file: and credential:).
        var environment = ConfigurationTests.environment
        environment["CREDENTIALS_DIRECTORY"] = directory.path
        #expect(try parse(withAdminToken("file:secret"), environment: environment, base: directory).admin.token.text == expected)
        #expect(try parse(withAdminToken("credential:secret"), environment: environment).admin.token.text == expected)

        // The audit: the file's value equals the expected literal (and nothing else).
        var document = withAdminToken("file:secret")
        var consumers = document["consumers"] as! [[String: Any]]
        consumers[0]["signingSecret"] = expected
        document["consumers"] = consumers
        let data = try JSONSerialization.data(withJSONObject: document)
        let findings = SecretAudit.audit(data: data, baseDirectory: directory, environment: environment).map(\.description)
        #expect(findings.contains("weak secret: consumers[0].signingSecret: the same value as admin.token"))

        // The signing tools.
        let signing = try SigningOptions.parse(["--scheme", "tiktok", "--secret", "credential:secret"]).resolve(environment: environment)
        #expect(signing.secret.text == expected)
    }

    @Test func theAuditReportsAnUnreadableCredentialAsMissing() throws {
        let credentials = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: credentials) }
        var environment = ConfigurationTests.environment
        environment["CREDENTIALS_DIRECTORY"] = credentials.path
        let data = try JSONSerialization.data(withJSONObject: withAdminToken("credential:admin-token"))
        let findings = SecretAudit.audit(data: data, baseDirectory: ConfigurationTests.base, environment: environment)
        #expect(
            findings.filter { $0.path == "admin.token" }.map(\.description) == [
                "missing secret: admin.token: cannot read credential admin-token"
            ])
    }

    /// A mounted Kubernetes Secret's files are links (`key -> ..data/key`, the link itself 0777):
    /// the audit judges the file the link leads to.
    @Test func theAuditJudgesTheFileBehindALink() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("..data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try writeSecret("a-long-and-random-Token-9f3k2", to: data.appendingPathComponent("admin-token"), mode: 0o440)
        try FileManager.default.createSymbolicLink(
            atPath: directory.appendingPathComponent("admin-token").path, withDestinationPath: "..data/admin-token")
        let document = try JSONSerialization.data(withJSONObject: withAdminToken("file:admin-token"))
        func findings() -> [String] {
            SecretAudit.audit(data: document, baseDirectory: directory, environment: ConfigurationTests.environment)
                .filter { $0.path == "admin.token" }.map(\.problem)
        }
        #expect(findings() == [])
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: data.appendingPathComponent("admin-token").path)
        #expect(findings().count == 1)
        #expect(findings().first?.hasSuffix("is readable by every user (chmod 600 or 640)") == true)
    }

    func writeSecret(_ value: String, to file: URL, mode: Int) throws {
        try "\(value)\n".write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
    }

    @Test func signingToolsNameTheOptionAndNeverTheValue() throws {
        let options = try SigningOptions.parse(["--scheme", "tiktok", "--secret", "credential:../tiktok"])
        #expect(throws: (any Error).self) { try options.resolve(environment: [:]) }
        do {
            _ = try options.resolve(environment: [:])
        } catch {
            #expect("\(error)".hasPrefix("--secret: "))
        }
    }

    @Test func descriptionsShowTheReferenceNeverALiteral() throws {
        #expect(try SecretReference(parsing: "env:TIKTOK_CLIENT_SECRET").description == "env:TIKTOK_CLIENT_SECRET")
        #expect(try SecretReference(parsing: "credential:admin-token").description == "credential:admin-token")
        #expect(try SecretReference(parsing: "file:secrets/x").description == "file:secrets/x")
        #expect(try SecretReference(parsing: "a-literal-secret-value").description == "a literal")
        #expect(try !SecretReference(parsing: "env:X").isReadAgainOnReload)
        #expect(try SecretReference(parsing: "file:x").isReadAgainOnReload)
        #expect(try SecretReference(parsing: "credential:x").isReadAgainOnReload)
    }
}
