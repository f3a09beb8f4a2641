import Foundation
import GatewayConfiguration
import Testing
import Verification

@testable import WebhookGateway

/// The development secrets of `webhook-gateway dev`: one per `env:` reference of the
/// configuration, generated once and kept.
struct DevSecretsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theExampleConfigurationNamesItsSecrets() throws {
        let document = try Data(contentsOf: Self.root.appendingPathComponent("config.example.json"))
        let references = try DevSecrets.references(in: document)
        #expect(
            Set(references.map(\.name)) == [
                "WEBHOOK_GATEWAY_ADMIN_TOKEN", "TIKTOK_CLIENT_SECRET", "TIKTOK_SHOP_APP_KEY", "TIKTOK_SHOP_APP_SECRET",
                "ORDERS_SIGNING_SECRET", "ORDERS_SANDBOX_SIGNING_SECRET", "OPS_SIGNING_SECRET",
            ])
        #expect(
            Set(references.filter(\.isSigningSecret).map(\.name)) == [
                "ORDERS_SIGNING_SECRET", "ORDERS_SANDBOX_SIGNING_SECRET", "OPS_SIGNING_SECRET",
            ])
    }

    @Test func secretsAreGeneratedOnceKeptAndPrivate() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-dev-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("data/dev-secrets.env")
        let first = try DevSecrets.loadOrCreate(at: file, for: [("ADMIN", false), ("CONSUMER", true)])
        #expect(first.values.map(\.0) == ["ADMIN", "CONSUMER"])
        let admin = first.values[0].1
        let consumer = first.values[1].1
        #expect(admin.count == 64 && admin.allSatisfy(\.isHexDigit))
        // The consumer's secret is one the gateway (and any Standard Webhooks library) accepts.
        #expect(consumer.hasPrefix("whsec_") && Data(base64Encoded: String(consumer.dropFirst(6)))?.count == 32)
        _ = try StandardWebhooksSigner(secret: Secret(consumer))
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        // A restart keeps them; a new reference gets a value of its own.
        let again = try DevSecrets.loadOrCreate(at: file, for: [("ADMIN", false), ("CONSUMER", true), ("NEW", false)])
        #expect(again.values.prefix(2).map(\.1) == [admin, consumer])
        #expect(again.values.count == 3 && again.values[2].1 != admin)
        // The file is shell syntax: a shell that loads it sees the same values.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "set -a; . \"$0\"; set +a; printf '%s %s %s' \"$ADMIN\" \"$CONSUMER\" \"$NEW\"", file.path]
        let pipe = Pipe()
        shell.standardOutput = pipe
        try shell.run()
        shell.waitUntilExit()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed == again.values.map(\.1).joined(separator: " "))
        // Two runs of a new folder do not share secrets.
        let other = try DevSecrets.loadOrCreate(at: directory.appendingPathComponent("other.env"), for: [("ADMIN", false)])
        #expect(other.values[0].1 != admin)
    }
}
