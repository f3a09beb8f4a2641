import Delivery
import Foundation
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// The configurations in `deploy/` load with the secrets their deployment provides: every
/// `credential:` of the systemd configuration is a `LoadCredential=` of the unit, and every `file:`
/// of the Kubernetes ConfigMap is a key of the mounted Secret.
struct DeployConfigurationTests {
    static let deploy = Edge.packageRoot.appendingPathComponent("deploy")

    /// A value that passes the configuration's checks for the secret named `name`.
    static func value(for name: String) -> String {
        if name == "database-url" { return "postgres://gateway:deploy-test-password@db.internal:5432/webhook_gateway?sslmode=verify-full" }
        return name.contains("signing") ? "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" : "deploy-test-value-\(name)-0123456789"
    }

    static func write(_ names: [String], in directory: URL) throws {
        for name in names {
            try "\(value(for: name))\n".write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }

    @Test func theSystemdConfigurationReadsTheUnitsCredentials() throws {
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("webhook-gateway.service"), encoding: .utf8)
        let credentials = unit.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("LoadCredential=") else { return nil }
            return line.dropFirst("LoadCredential=".count).split(separator: ":").first.map(String.init)
        }
        #expect(credentials.count == 5)
        #expect(!unit.contains("EnvironmentFile="))
        let directory = try Edge.temporaryDirectory("deploy-systemd")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.write(credentials, in: directory)

        let configuration = try GatewayConfiguration.load(
            path: Self.deploy.appendingPathComponent("config.systemd.json").path,
            environment: ["CREDENTIALS_DIRECTORY": directory.path])
        #expect(configuration.admin.token.text == Self.value(for: "admin-token"))
        #expect(configuration.secretFields.count == 5)
        #expect(configuration.secretFields.allSatisfy { if case .credential = $0.reference.form { true } else { false } })
    }

    /// `kubernetes/`: one replica on SQLite; `kubernetes/postgres/`: N replicas on PostgreSQL, whose
    /// database URL is one more file of the Secret.
    @Test(arguments: [("kubernetes", 5), ("kubernetes/postgres", 6)])
    func theKubernetesConfigurationReadsTheMountedSecret(folder: String, secretCount: Int) throws {
        let configMap = try String(contentsOf: Self.deploy.appendingPathComponent("\(folder)/configmap.yaml"), encoding: .utf8)
        let secret = try String(contentsOf: Self.deploy.appendingPathComponent("\(folder)/secret.example.yaml"), encoding: .utf8)
        let deployment = try String(contentsOf: Self.deploy.appendingPathComponent("\(folder)/deployment.yaml"), encoding: .utf8)
        // The Secret is mounted whole (a subPath mount is never updated) where the paths point.
        #expect(!deployment.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("subPath:") })
        #expect(deployment.contains("mountPath: /etc/webhook-gateway/secrets"))
        #expect(!deployment.contains("secretKeyRef"))

        // The JSON of `config.json: |`: the lines below it, indented by four spaces.
        let lines = configMap.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "config.json: |" })
        let json = lines[(start + 1)...].prefix { $0.hasPrefix("    ") || $0.isEmpty }.map { $0.dropFirst(4) }.joined(separator: "\n")
        // The keys of the Secret's stringData.
        let secretLines = secret.split(separator: "\n")
        let data = try #require(secretLines.firstIndex { $0 == "stringData:" })
        let keys = secretLines[(data + 1)...].prefix { $0.hasPrefix("  ") }.compactMap {
            $0.trimmingCharacters(in: .whitespaces).split(separator: ":").first.map(String.init)
        }
        #expect(keys.count == secretCount)

        let directory = try Edge.temporaryDirectory("deploy-kubernetes")
        defer { try? FileManager.default.removeItem(at: directory) }
        try Self.write(keys, in: directory)
        let moved = json.replacingOccurrences(of: "/etc/webhook-gateway/secrets/", with: directory.path + "/")
        let configuration = try GatewayConfiguration.parse(data: Data(moved.utf8), baseDirectory: directory, environment: [:])
        #expect(configuration.secretFields.count == secretCount)
        #expect(configuration.secretFields.allSatisfy { if case .file = $0.reference.form { true } else { false } })
        #expect(configuration.sources[1].appKey?.text == Self.value(for: "tiktok-shop-app-key"))
        if secretCount == 6 {
            #expect(configuration.storage.postgres?.url.host == "db.internal")
            #expect(configuration.storage.postgres?.url.tls == .verifyFull)
            #expect(deployment.contains("replicas: 3"))
            #expect(deployment.contains("maxUnavailable: 0"))
        }
    }
}
