import Foundation
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

/// The `limits` and `tls` keys, what a reload may change, and check-config's secret audit.
struct EdgeConfigurationTests {
    let base = ConfigurationTests()

    func with(_ key: String, _ value: Any) -> [String: Any] {
        var document = ConfigurationTests.document()
        document[key] = value
        return document
    }

    @Test func limitsDefaultsAndOverrides() throws {
        let defaults = try base.parse(ConfigurationTests.document())
        #expect(defaults.limits.connections == ConnectionLimits())
        #expect(defaults.limits.rateLimit == nil)
        let custom = try base.parse(
            with(
                "limits",
                [
                    "readTimeout": "2s", "idleTimeout": "30s", "maxHeaderBytes": 8_192, "maxConnections": 64,
                    "rateLimit": ["requestsPerSecond": 100, "burst": 200],
                ]))
        #expect(custom.limits.connections.readTimeout == .seconds(2))
        #expect(custom.limits.connections.idleTimeout == .seconds(30))
        #expect(custom.limits.connections.maxHeaderBytes == 8_192)
        #expect(custom.limits.connections.maxConnections == 64)
        #expect(custom.limits.rateLimit == .init(requestsPerSecond: 100, burst: 200))
        let burstDefault = try base.parse(with("limits", ["rateLimit": ["requestsPerSecond": 7]]))
        #expect(burstDefault.limits.rateLimit == .init(requestsPerSecond: 7, burst: 7))
    }

    @Test(arguments: [
        (#"{"readTimeout": "10 parsecs"}"#, "limits.readTimeout: \"10 parsecs\" is not a duration"),
        (#"{"idleTimeout": "10ms"}"#, "limits.idleTimeout: must be between 100ms and 1h"),
        (#"{"maxHeaderBytes": 100}"#, "limits.maxHeaderBytes: 100 is out of range"),
        (#"{"maxConnections": 0}"#, "limits.maxConnections: 0 is out of range"),
        (#"{"rateLimit": {"burst": 5}}"#, "limits.rateLimit.requestsPerSecond"),
        (#"{"rateLimit": {"requestsPerSecond": 5, "per": "1s"}}"#, "limits.rateLimit.per"),
        (#"{"maxConnection": 5}"#, "limits.maxConnection"),
        (#"{"maxBufferedBodyBytes": 0}"#, "limits.maxBufferedBodyBytes: 0 is out of range"),
        (#"{"maxBufferedBodyBytes": "64MiB"}"#, "limits.maxBufferedBodyBytes: expected a whole number"),
        (#"{"maxBufferedBodyBytes": 1048576}"#, "limits.maxBufferedBodyBytes: must be at least twice maxBodyBytes (2097152)"),
    ])
    func limitErrorsNameTheField(limits: String, expected: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(limits.utf8))
        let message = base.expectError(with("limits", value))
        #expect(message.hasPrefix(expected), "\(message)")
    }

    @Test func bufferedBodyBytesDefaultsToThirtyTwoMiBOrTwiceTheBodyLimit() throws {
        let defaults = try base.parse(ConfigurationTests.document())
        #expect(defaults.limits.maxBufferedBodyBytes == nil)
        #expect(defaults.bufferedBodyBytes == 32 << 20)
        let bigBodies = try base.parse(with("maxBodyBytes", 200 << 20))
        #expect(bigBodies.bufferedBodyBytes == 400 << 20)
        let custom = try base.parse(with("limits", ["maxBufferedBodyBytes": 8 << 20]))
        #expect(custom.bufferedBodyBytes == 8 << 20)
        var small = with("limits", ["maxBufferedBodyBytes": 8_192])
        small["maxBodyBytes"] = 4_096
        #expect(try base.parse(small).bufferedBodyBytes == 8_192)
    }

    @Test func tlsFilesAreResolvedAgainstTheConfigFolder() throws {
        var document = ConfigurationTests.document()
        document["listen"] = ["tls": ["certificateChain": "tls/cert.pem", "privateKey": "/secure/key.pem"]]
        document["admin"] = ["token": "env:WEBHOOK_GATEWAY_ADMIN_TOKEN", "tls": ["certificateChain": "a.pem", "privateKey": "b.pem"]]
        let configuration = try base.parse(document)
        #expect(configuration.listen.tls == .init(certificateChain: "/etc/webhook-gateway/tls/cert.pem", privateKey: "/secure/key.pem"))
        #expect(configuration.admin.tls == .init(certificateChain: "/etc/webhook-gateway/a.pem", privateKey: "/etc/webhook-gateway/b.pem"))
        document["listen"] = ["tls": ["certificateChain": "tls/cert.pem"]]
        #expect(base.expectError(document).hasPrefix("listen.tls.privateKey"))
    }

    @Test func reloadAcceptsSecretsAndConsumerSettingsOnly() throws {
        let old = try base.parse(ConfigurationTests.document())

        var secrets = ConfigurationTests.document()
        var sources = secrets["sources"] as! [[String: Any]]
        sources[0]["secrets"] = ["env:TIKTOK_CLIENT_SECRET", "a-second-secret-for-rotation"]
        secrets["sources"] = sources
        var consumers = secrets["consumers"] as! [[String: Any]]
        consumers[0]["url"] = "http://127.0.0.1:7002/events"
        consumers[0]["retry"] = ["maxAttempts": 3]
        consumers[0]["events"] = ["minis.*"]
        secrets["consumers"] = consumers
        secrets["admin"] = ["token": "a-brand-new-admin-token"]
        let new = try base.parse(secrets)
        #expect(old.fieldsNeedingRestart(comparedWith: new) == [])
        #expect(!old.consumers[0].hasSameDelivery(as: new.consumers[0]))

        var moved = ConfigurationTests.document()
        moved["listen"] = ["port": 8081]
        moved["maxBodyBytes"] = 10
        moved["consumers"] = []
        #expect(
            old.fieldsNeedingRestart(comparedWith: try base.parse(moved)) == ["listen", "maxBodyBytes", "consumers (the set of names)"])
    }

    @Test(arguments: [
        ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("127.0.0.1", "127.0.0.1"), ("fe80::1", "[fe80::1]"),
        ("gateway.internal", "gateway.internal"),
    ])
    func localClientsReachAListenerOnLoopback(host: String, expected: String) {
        #expect(AdminAccess.urlHost(listeningOn: host) == expected)
    }

    func audit(_ document: [String: Any], environment: [String: String] = ConfigurationTests.environment, base: URL? = nil)
        -> [SecretAudit.Finding]
    {
        let data = try! JSONSerialization.data(withJSONObject: document)
        return SecretAudit.audit(data: data, baseDirectory: base ?? ConfigurationTests.base, environment: environment)
    }

    @Test func auditFindsMissingAndWeakSecretsWithoutShowingThem() throws {
        var environment = ConfigurationTests.environment
        environment["TIKTOK_CLIENT_SECRET"] = nil
        environment["TIKTOK_SHOP_APP_SECRET"] = "changeme-please-0123"
        var document = ConfigurationTests.document()
        document["admin"] = ["token": "aaaaaaaaaaaaaaaaaaaa"]
        var consumers = document["consumers"] as! [[String: Any]]
        consumers.append([
            "name": "analytics", "url": "http://127.0.0.1:7003/", "signingSecret": "env:ORDERS_SIGNING_SECRET",
        ])
        document["consumers"] = consumers
        let findings = audit(document, environment: environment)
        let lines = findings.map(\.description)
        #expect(lines.contains("missing secret: sources[0].secrets[0]: environment variable TIKTOK_CLIENT_SECRET is not set"))
        #expect(lines.contains("weak secret: sources[1].secrets[0]: looks like a placeholder"))
        #expect(lines.contains("weak secret: admin.token: written literally into the configuration file; use env:, file: or credential:"))
        #expect(lines.contains("weak secret: admin.token: fewer than 6 distinct characters"))
        #expect(lines.contains("weak secret: consumers[1].signingSecret: the same value as consumers[0].signingSecret"))
        // The shop secret of the independent vector is 10 bytes: short.
        environment["TIKTOK_SHOP_APP_SECRET"] = "e59af819cc"
        #expect(
            audit(document, environment: environment).map(\.description).contains(
                "weak secret: sources[1].secrets[0]: shorter than 16 bytes"))
        for line in lines {
            for value in ["changeme-please-0123", "aaaaaaaaaaaaaaaaaaaa", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "68xu9ks5p4i8"] {
                #expect(!line.contains(value))
            }
        }
    }

    @Test func auditChecksSecretFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-audit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("token")
        try "a-long-and-random-Token-9f3k2\n".write(to: file, atomically: true, encoding: .utf8)
        var document = ConfigurationTests.document()
        document["admin"] = ["token": "file:token"]
        // Only the admin token is looked at here (the vectors' TikTok secrets are weak on purpose).
        func tokenFindings() -> [SecretAudit.Finding] { audit(document, base: directory).filter { $0.path == "admin.token" } }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        #expect(tokenFindings().map(\.problem) == ["secret file \(file.path) is readable by every user (chmod 600 or 640)"])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        #expect(tokenFindings() == [])
        document["admin"] = ["token": "file:absent"]
        #expect(tokenFindings().map(\.kind) == [.missing])
    }
}
