import Foundation
import Testing

extension BinaryTests {
    /// Rotating secrets against the built binary: `file:` and `credential:` values are read again on
    /// SIGHUP; `env:` values cannot be, and the reload's log says so.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct SecretRotationProcessTests {
        static let oldToken = "rotation-test-admin-token-old-4Kd9"
        static let newToken = "rotation-test-admin-token-new-Vb27"
        static let newSecret = "rotation-test-tiktok-secret-new-Q3x8"

        func url(_ gateway: GatewayProcess) -> String { "http://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok" }

        func log(_ directory: URL, _ name: String) -> String {
            (try? String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)) ?? ""
        }

        /// Writes a secret file as an operator (or kubelet, or systemd) would: whole, mode 0600.
        func writeSecret(_ value: String, to file: URL) throws {
            try "\(value)\n".write(to: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        }

        @Test func theAdminTokenRotatesByFileAndSighup() async throws {
            let directory = try Edge.temporaryDirectory("rotate-admin-token")
            defer { try? FileManager.default.removeItem(at: directory) }
            let tokenFile = directory.appendingPathComponent("admin.token")
            try writeSecret(Self.oldToken, to: tokenFile)
            let config = try Edge.writeConfig(in: directory, adminToken: "file:admin.token")
            let gateway = try GatewayProcess(config: config, directory: directory, name: "gw")
            #expect(try await gateway.admin("/metrics", token: Self.oldToken).status == 200)
            #expect(try await gateway.admin("/metrics", token: Self.newToken).status == 401)

            // Only the file changes; the configuration stays as it is.
            try writeSecret(Self.newToken, to: tokenFile)
            gateway.kill(SIGHUP)
            #expect(await Edge.eventually { (try? await gateway.admin("/metrics", token: Self.newToken).status) == 200 })
            #expect(try await gateway.admin("/metrics", token: Self.oldToken).status == 401)
            #expect(try await gateway.admin("/admin/dead-letters?consumer=orders", token: Self.newToken).status == 200)
            #expect(try await gateway.admin("/admin/dead-letters?consumer=orders", token: Self.oldToken).status == 401)

            let text = log(directory, "gw")
            #expect(text.contains("configuration reloaded"))
            #expect(text.contains("secrets.reread=admin.token"))
            // No env: secret here: no warning about them.
            #expect(!text.contains("env: secrets are fixed until restart"))
            #expect(!text.contains(Self.oldToken) && !text.contains(Self.newToken))
        }

        @Test func credentialSecretsAreReadFromTheCredentialsDirectoryAndRotate() async throws {
            let directory = try Edge.temporaryDirectory("rotate-credential")
            defer { try? FileManager.default.removeItem(at: directory) }
            // A folder like the one systemd's LoadCredential= makes, named by CREDENTIALS_DIRECTORY.
            let credentials = directory.appendingPathComponent("credentials")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            try writeSecret(Edge.secret, to: credentials.appendingPathComponent("tiktok-client-secret"))
            try writeSecret(Self.oldToken, to: credentials.appendingPathComponent("admin-token"))
            let config = try Edge.writeConfig(
                in: directory, secrets: ["credential:tiktok-client-secret"], adminToken: "credential:admin-token")
            let gateway = try GatewayProcess(
                config: config, directory: directory, name: "gw", environment: ["CREDENTIALS_DIRECTORY": credentials.path])
            #expect(try await Edge.send(orderID: "c-1", url: url(gateway)).status == 200)
            #expect(try await Edge.send(orderID: "c-2", secret: Self.newSecret, url: url(gateway)).status == 401)
            #expect(try await gateway.admin("/metrics", token: Self.oldToken).status == 200)

            try writeSecret(Self.newSecret, to: credentials.appendingPathComponent("tiktok-client-secret"))
            gateway.kill(SIGHUP)
            #expect(
                await Edge.eventually { (try? await Edge.send(orderID: "c-3", secret: Self.newSecret, url: url(gateway)).status) == 200 })
            #expect(try await Edge.send(orderID: "c-4", url: url(gateway)).status == 401)
            let text = log(directory, "gw")
            #expect(!text.contains(Edge.secret) && !text.contains(Self.newSecret) && !text.contains(Self.oldToken))
        }

        @Test func aReloadWithEnvSecretsWarnsThatTheyAreFixedUntilRestart() async throws {
            let directory = try Edge.temporaryDirectory("rotate-env")
            defer { try? FileManager.default.removeItem(at: directory) }
            let config = try Edge.writeConfig(in: directory, secrets: ["env:ROTATION_TEST_TIKTOK_SECRET"])
            let gateway = try GatewayProcess(
                config: config, directory: directory, name: "gw", environment: ["ROTATION_TEST_TIKTOK_SECRET": Edge.secret])
            #expect(try await Edge.send(orderID: "e-1", url: url(gateway)).status == 200)

            gateway.kill(SIGHUP)
            #expect(await Edge.eventually { log(directory, "gw").contains("env: secrets are fixed until restart") })
            let text = log(directory, "gw")
            let warning = text.split(separator: "\n").first { $0.contains("env: secrets are fixed until restart") } ?? ""
            #expect(warning.contains("warning"))
            #expect(warning.contains("fields=sources[0].secrets[0]"))
            #expect(text.contains("configuration reloaded"))
            #expect(!text.contains(Edge.secret))
            // The running secret is still the one the process started with.
            #expect(try await Edge.send(orderID: "e-2", url: url(gateway)).status == 200)
        }
    }
}
