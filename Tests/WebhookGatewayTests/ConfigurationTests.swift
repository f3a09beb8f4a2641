import Foundation
import Testing
import Verification

@testable import GatewayConfiguration
@testable import WebhookGateway

struct ConfigurationTests {
    static let environment = [
        "TIKTOK_CLIENT_SECRET": "client_secret_example",
        "TIKTOK_SHOP_APP_KEY": "68xu9ks5p4i8",
        "TIKTOK_SHOP_APP_SECRET": "e59af819cc",
        "ORDERS_SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "ORDERS_SANDBOX_SIGNING_SECRET": "whsec_c2FuZGJveC1zZWNyZXQtZm9yLXRoZS10ZXN0cw==",
        "OPS_SIGNING_SECRET": "whsec_b3BzLXNpZ25pbmctc2VjcmV0LWZvci10ZXN0cw==",
        "WEBHOOK_GATEWAY_ADMIN_TOKEN": "an-admin-token-of-some-length",
    ]

    static let base = URL(fileURLWithPath: "/etc/webhook-gateway")

    /// A valid configuration; each test changes one thing.
    static func document() -> [String: Any] {
        [
            "admin": ["token": "env:WEBHOOK_GATEWAY_ADMIN_TOKEN"],
            "sources": [
                ["name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["env:TIKTOK_CLIENT_SECRET"]],
                [
                    "name": "shop", "path": "/webhooks/shop", "scheme": "tiktok-shop", "appKey": "env:TIKTOK_SHOP_APP_KEY",
                    "secrets": ["env:TIKTOK_SHOP_APP_SECRET"],
                ],
            ],
            "consumers": [
                [
                    "name": "orders", "url": "http://127.0.0.1:7001/events", "sources": ["tiktok"], "events": ["minis.trade_order.*"],
                    "signingSecret": "env:ORDERS_SIGNING_SECRET",
                ]
            ],
        ]
    }

    func parse(_ document: Any, environment: [String: String] = Self.environment) throws(ConfigurationError) -> GatewayConfiguration {
        let data = try! JSONSerialization.data(withJSONObject: document)
        return try GatewayConfiguration.parse(data: data, baseDirectory: Self.base, environment: environment)
    }

    func expectError(_ document: Any, environment: [String: String] = Self.environment) -> String {
        do {
            _ = try parse(document, environment: environment)
            Issue.record("expected a configuration error")
            return ""
        } catch {
            return error.description
        }
    }

    @Test func defaultsAndResolvedSecrets() throws {
        let configuration = try parse(Self.document())
        #expect(configuration.listen.host == "0.0.0.0")
        #expect(configuration.listen.port == 8080)
        #expect(configuration.maxBodyBytes == 1_048_576)
        #expect(configuration.admin.host == "127.0.0.1")
        #expect(configuration.admin.port == 9090)
        #expect(configuration.admin.token.text == "an-admin-token-of-some-length")
        #expect(configuration.storage.path == "/etc/webhook-gateway/data/gateway.sqlite")
        #expect(configuration.deadLetterDirectory == "/etc/webhook-gateway/data/dead-letters")
        #expect(configuration.dedupRetention == .seconds(7 * 86_400))
        #expect(configuration.sources[0].tolerance == .seconds(300))
        #expect(configuration.sources[0].secrets.map(\.text) == ["client_secret_example"])
        #expect(configuration.sources[1].appKey?.text == "68xu9ks5p4i8")
        let orders = configuration.consumers[0]
        #expect(orders.timeout == .seconds(10))
        #expect(orders.concurrency == 16)
        #expect(orders.retry == .init(maxAttempts: 12, initialDelay: .seconds(1), maxDelay: .seconds(3_600)))
        #expect(orders.matches(source: "tiktok", eventType: "minis.trade_order.redeem.success"))
        #expect(!orders.matches(source: "tiktok", eventType: "minis.other"))
        #expect(!orders.matches(source: "shop", eventType: "minis.trade_order.redeem.success"))
    }

    /// `consumers[].sandbox`: whether TikTok sandbox events reach the consumer; `include` by default.
    @Test func sandboxPolicyDecidesWhichEventsAConsumerGets() throws {
        let event = "minis.trade_order.redeem.success"
        #expect(try parse(Self.document()).consumers[0].sandbox == .include)
        for (policy, production, sandbox) in [("include", true, true), ("exclude", true, false), ("only", false, true)] {
            var document = Self.document()
            var consumers = document["consumers"] as! [[String: Any]]
            consumers[0]["sandbox"] = policy
            document["consumers"] = consumers
            let orders = try parse(document).consumers[0]
            #expect(orders.matches(source: "tiktok", eventType: event, sandbox: false) == production, "\(policy)")
            #expect(orders.matches(source: "tiktok", eventType: event, sandbox: true) == sandbox, "\(policy)")
        }
        var document = Self.document()
        var consumers = document["consumers"] as! [[String: Any]]
        consumers[0]["sandbox"] = "sometimes"
        document["consumers"] = consumers
        #expect(expectError(document).hasPrefix("consumers[0].sandbox:"), "\(expectError(document))")
    }

    @Test func theExampleConfigurationLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try GatewayConfiguration.load(
            path: root.appendingPathComponent("config.example.json").path, environment: Self.environment)
        #expect(configuration.sources.map(\.name) == ["tiktok", "tiktok-shop"])
        #expect(configuration.storage.path == root.appendingPathComponent("data/gateway.sqlite").path)
        // A team tests payments in TikTok's sandbox without the production consumer unlocking anything.
        #expect(configuration.consumers.map(\.name) == ["orders", "orders-sandbox", "ops"])
        #expect(configuration.consumers.map(\.sandbox) == [.exclude, .only, .include])
        // The operations consumer gets the gateway's own events and nothing else.
        #expect(configuration.consumers[2].sources == ["_gateway"])
        #expect(configuration.consumers[2].matches(source: "_gateway", eventType: "consumer.paused"))
        #expect(!configuration.consumers[2].matches(source: "tiktok", eventType: "minis.trade_order.redeem.success"))
    }

    /// A consumer may name the reserved source `_gateway` (no source is configured by that name);
    /// a consumer without `sources` does not get the gateway's events.
    @Test func onlyConsumersNamingTheGatewaySourceGetItsEvents() throws {
        let everything = try #require(
            try GatewayConfiguration.load(
                path: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent("config.example.json").path,
                environment: Self.environment
            ).consumers.first)
        var all = everything
        all.sources = nil
        all.events = nil
        #expect(all.matches(source: "tiktok", eventType: "anything"))
        #expect(!all.matches(source: "_gateway", eventType: "consumer.paused"))
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("5s", .seconds(5)), ("10m", .seconds(600)), ("72h", .seconds(259_200)),
        ("7d", .seconds(604_800)),
    ])
    func durationsWithUnits(text: String, expected: Duration) throws {
        var document = Self.document()
        var consumer = (document["consumers"] as! [[String: Any]])[0]
        consumer["timeout"] = text
        document["consumers"] = [consumer]
        #expect(try parse(document).consumers[0].timeout == expected)
    }

    @Test func badDurationNamesTheField() {
        var document = Self.document()
        var consumers = document["consumers"] as! [[String: Any]]
        consumers.append(consumers[0].merging(["name": "second", "retry": ["initialDelay": "10 parsecs"]]) { $1 })
        document["consumers"] = consumers
        #expect(expectError(document).hasPrefix(#"consumers[1].retry.initialDelay: "10 parsecs" is not a duration"#))
    }

    @Test(arguments: ["5", "5 s", "-5s", "1.5s", "5S", "5w", ""])
    func malformedDurations(text: String) {
        var document = Self.document()
        document["dedup"] = ["retention": text]
        #expect(expectError(document).hasPrefix("dedup.retention: "))
    }

    @Test func unknownKeysAreErrors() {
        var document = Self.document()
        document["maxBodyByte"] = 10
        #expect(expectError(document) == "maxBodyByte: unknown key")

        var nested = Self.document()
        var sources = nested["sources"] as! [[String: Any]]
        sources[1]["secret"] = ["x"]
        nested["sources"] = sources
        #expect(expectError(nested) == "sources[1].secret: unknown key")

        var deep = Self.document()
        var consumer = (deep["consumers"] as! [[String: Any]])[0]
        consumer["retry"] = ["maxAttempt": 3]
        deep["consumers"] = [consumer]
        #expect(expectError(deep) == "consumers[0].retry.maxAttempt: unknown key")
    }

    @Test func retentionBelow72HoursIsAnError() throws {
        var document = Self.document()
        document["dedup"] = ["retention": "71h"]
        #expect(expectError(document).hasPrefix("dedup.retention: must be at least 72h"))
        document["dedup"] = ["retention": "72h"]
        #expect(try parse(document).dedupRetention == .seconds(72 * 3_600))
    }

    /// SPEC: durations have an upper bound of 3650d. `"999999999999d"` used to pass the parser and
    /// crash `serve` with an overflow; now it is an error naming the key.
    @Test(arguments: ["999999999999d", "3651d", "87625h", "315360000001s", "999999999999ms"])
    func durationsAboveTheBoundAreErrors(text: String) {
        var document = Self.document()
        document["dedup"] = ["retention": text]
        #expect(expectError(document) == "dedup.retention: \"\(text)\" is more than 3650d")

        var consumerDocument = Self.document()
        var consumer = (consumerDocument["consumers"] as! [[String: Any]])[0]
        consumer["retry"] = ["maxDelay": text]
        consumerDocument["consumers"] = [consumer]
        #expect(expectError(consumerDocument) == "consumers[0].retry.maxDelay: \"\(text)\" is more than 3650d")
    }

    @Test func theBoundItselfIsAllowed() throws {
        var document = Self.document()
        document["dedup"] = ["retention": "3650d"]
        document["events"] = ["retention": "3650d"]
        let configuration = try parse(document)
        #expect(configuration.dedupRetention == .seconds(315_360_000))
        #expect(configuration.eventRetention == .seconds(315_360_000))
    }

    /// A captured request must never verify after its dedup key has expired.
    @Test func toleranceMayNotExceedTheDedupRetention() throws {
        var document = Self.document()
        var sources = document["sources"] as! [[String: Any]]
        sources[0]["tolerance"] = "73h"
        document["sources"] = sources
        document["dedup"] = ["retention": "72h"]
        #expect(expectError(document) == "sources[0].tolerance: must not be more than dedup.retention")
        sources[0]["tolerance"] = "72h"
        document["sources"] = sources
        #expect(try parse(document).sources[0].tolerance == .seconds(72 * 3_600))
        // Under the default retention (7d) too.
        document["dedup"] = nil
        sources[0]["tolerance"] = "8d"
        document["sources"] = sources
        #expect(expectError(document) == "sources[0].tolerance: must not be more than dedup.retention")
    }

    @Test func eventRetentionDefaultsToSevenDays() throws {
        #expect(try parse(Self.document()).eventRetention == .seconds(7 * 86_400))
        var document = Self.document()
        document["events"] = [String: Any]()
        #expect(try parse(document).eventRetention == .seconds(7 * 86_400))
    }

    @Test(arguments: [("1h", Duration.seconds(3_600)), ("30d", .seconds(30 * 86_400)), ("90m", .seconds(5_400))])
    func eventRetentionTakesADuration(text: String, expected: Duration) throws {
        var document = Self.document()
        document["events"] = ["retention": text]
        #expect(try parse(document).eventRetention == expected)
    }

    @Test func eventRetentionErrorsNameTheKey() {
        var document = Self.document()
        document["events"] = ["retention": "59m"]
        #expect(expectError(document) == "events.retention: must be at least 1h")
        document["events"] = ["retention": "3599s"]
        #expect(expectError(document) == "events.retention: must be at least 1h")
        document["events"] = ["retention": "a week"]
        #expect(expectError(document).hasPrefix(#"events.retention: "a week" is not a duration"#))
        document["events"] = ["retention": "3651d"]
        #expect(expectError(document) == #"events.retention: "3651d" is more than 3650d"#)
        document["events"] = ["retension": "7d"]
        #expect(expectError(document) == "events.retension: unknown key")
        document["events"] = "7d"
        #expect(expectError(document) == "events: expected an object, found a string")
    }

    @Test func dedupKeysAreReadInOrder() throws {
        var document = Self.document()
        document["dedup"] = [
            "retention": "7d",
            "keys": [
                ["events": ["minis.subscription.*"], "fields": ["event", "content.order_id", "create_time"]],
                ["events": ["1", "12"], "fields": ["shop_id", "data.order_id", "timestamp", "tts_notification_id", "type"]],
            ],
        ]
        let rules = try parse(document).dedupRules
        #expect(
            rules.map(\.fields.description) == [
                "[event, content.order_id, create_time]", "[shop_id, data.order_id, timestamp, tts_notification_id, type]",
            ])
        #expect(rules[0].applies(to: "minis.subscription.renew") && !rules[0].applies(to: "minis.trade_order.redeem.success"))
        #expect(rules[1].applies(to: "12") && !rules[1].applies(to: "1x"))
        #expect(try parse(Self.document()).dedupRules.isEmpty)
    }

    /// `check-config` names the rule and the field: a typo in a dedup key must not silently key
    /// every event by its body.
    @Test(arguments: [
        (
            #"{"events": ["minis.subscription.*"], "fields": ["event", "content.orderid.x"]}"#,
            #"dedup.keys[1].fields[1]: unknown field "content.orderid.x"; expected one of event, create_time, client_key, user_openid, type, shop_id, timestamp, tts_notification_id, content.<name> or data.<name>"#
        ),
        (#"{"events": ["e"], "fields": ["order_id"]}"#, #"dedup.keys[1].fields[0]: unknown field "order_id"; expected one of"#),
        (#"{"events": ["e"], "fields": []}"#, "dedup.keys[1].fields: at least one field is needed"),
        (#"{"events": [], "fields": ["event"]}"#, "dedup.keys[1].events: at least one event pattern is needed"),
        (#"{"events": ["a*b"], "fields": ["event"]}"#, #"dedup.keys[1].events[0]: "a*b" is not an event name or a prefix ending in *"#),
        (#"{"fields": ["event"]}"#, "dedup.keys[1].events: is required"),
        (#"{"events": ["e"], "fields": ["event"], "field": ["x"]}"#, "dedup.keys[1].field: unknown key"),
        (#"{"events": ["e"], "fields": [7]}"#, "dedup.keys[1].fields[0]: expected a string"),
    ])
    func dedupKeyErrorsNameTheRule(rule: String, expected: String) throws {
        var document = Self.document()
        let second = try JSONSerialization.jsonObject(with: Data(rule.utf8))
        document["dedup"] = ["keys": [["events": ["x"], "fields": ["event"]], second]]
        let error = expectError(document)
        #expect(error.hasPrefix(expected), "\(error)")
    }

    @Test func missingEnvironmentVariableNamesFieldAndVariable() {
        var environment = Self.environment
        environment["TIKTOK_SHOP_APP_SECRET"] = nil
        #expect(
            expectError(Self.document(), environment: environment)
                == "sources[1].secrets[0]: environment variable TIKTOK_SHOP_APP_SECRET is not set")
    }

    @Test func fileAndLiteralSecrets() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wg-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "secret-from-file\n".write(to: directory.appendingPathComponent("tiktok.secret"), atomically: true, encoding: .utf8)
        var document = Self.document()
        var sources = document["sources"] as! [[String: Any]]
        sources[0]["secrets"] = ["file:tiktok.secret", "a-literal-secret"]
        document["sources"] = sources
        let data = try JSONSerialization.data(withJSONObject: document)
        let configuration = try GatewayConfiguration.parse(data: data, baseDirectory: directory, environment: Self.environment)
        #expect(configuration.sources[0].secrets.map(\.text) == ["secret-from-file", "a-literal-secret"])

        sources[0]["secrets"] = ["file:missing.secret"]
        document["sources"] = sources
        let error = expectError(document)
        #expect(error.hasPrefix("sources[0].secrets[0]: cannot read secret file"))
    }

    @Test func errorsNeverShowSecretValues() {
        var document = Self.document()
        document["admin"] = ["token": "short-secret"]
        let error = expectError(document)
        #expect(error == "admin.token: the admin token must be at least 16 characters")
        #expect(!error.contains("short-secret"))

        var signing = Self.document()
        var consumer = (signing["consumers"] as! [[String: Any]])[0]
        consumer["signingSecret"] = "not-a-whsec-secret-value"
        signing["consumers"] = [consumer]
        let signingError = expectError(signing)
        #expect(signingError.hasPrefix("consumers[0].signingSecret: "))
        #expect(!signingError.contains("not-a-whsec-secret-value"))
    }

    /// A PostgreSQL URL holds a password: an error about it names the field and what is wrong,
    /// never the URL; `check-config`'s summary shows it with the password redacted.
    @Test func postgresURLErrorsNeverShowThePassword() throws {
        var document = Self.document()
        document["storage"] = ["kind": "postgres", "url": "postgres://gw:hunter2-secret@db:5432/events?sslmode=sometimes"]
        let error = expectError(document)
        #expect(error.hasPrefix("storage.url: sslmode"))
        #expect(!error.contains("hunter2-secret"))
        document["storage"] = ["kind": "postgres", "url": "postgres://gw:hunter2-secret@db:5432/events?sslmode=disable"]
        let configuration = try GatewayConfiguration.parse(
            data: try JSONSerialization.data(withJSONObject: document), baseDirectory: Self.base, environment: Self.environment)
        #expect(configuration.storage.summary == "postgres postgres://gw:<redacted>@db:5432/events?sslmode=disable")
        #expect(configuration.storage.postgres?.maxConnections == 16)
    }

    @Test(arguments: [
        (#"{"sources": "tiktok"}"#, "sources: expected a list, found a string"),
        (#"{"sources": []}"#, "sources: at least one source is needed"),
        (#"{"listen": {"port": 70000}}"#, "listen.port: 70000 is out of range 0...65535"),
        (#"{"listen": {"port": "8080"}}"#, "listen.port: expected a whole number, found a string"),
        (#"{"listen": {"port": 80.5}}"#, "listen.port: expected a whole number, found a number"),
        (#"{"maxBodyBytes": 0}"#, "maxBodyBytes: 0 is out of range 1...268435456"),
        (#"{"storage": {"kind": "mysql"}}"#, #"storage.kind: unknown storage kind "mysql" (supported: "sqlite", "postgres")"#),
        (#"{"storage": {"kind": "postgres"}}"#, "storage.url: is required"),
        (
            #"{"storage": {"kind": "postgres", "url": "postgres://gw:pw@db/events", "path": "x.sqlite"}}"#,
            "storage.path: unknown key"
        ),
        (
            #"{"storage": {"kind": "postgres", "url": "postgres://gw:pw@db/events", "maxConnections": 1}}"#,
            "storage.maxConnections: 1 is out of range 2...1000"
        ),
        (#"{"storage": {"kind": "postgres", "url": "postgres://gw@db"}}"#, "storage.url: the URL names no database"),
        (#"{"admin": {"token": true}}"#, "admin.token: expected a string, found a boolean"),
        (#"{"admin": null}"#, "admin: is required"),
    ])
    func typeAndRangeErrors(change: String, expected: String) {
        let changes = try! JSONSerialization.jsonObject(with: Data(change.utf8)) as! [String: Any]
        var document = Self.document()
        for (key, value) in changes { document[key] = value is NSNull ? nil : value }
        #expect(expectError(document) == expected)
    }

    @Test func sourceRules() {
        func withSource(_ index: Int, _ change: [String: Any?]) -> [String: Any] {
            var document = Self.document()
            var sources = document["sources"] as! [[String: Any]]
            for (key, value) in change { sources[index][key] = value }
            document["sources"] = sources
            return document
        }
        #expect(expectError(withSource(0, ["scheme": "stripe"])).hasPrefix(#"sources[0].scheme: unknown scheme "stripe""#))
        #expect(expectError(withSource(1, ["appKey": nil])) == "sources[1].appKey: is required")
        #expect(expectError(withSource(0, ["appKey": "x"])) == "sources[0].appKey: only the tiktok-shop scheme has an app key")
        #expect(
            expectError(withSource(1, ["tolerance": "5m"]))
                == "sources[1].tolerance: the tiktok-shop scheme has no timestamp, so no tolerance")
        #expect(expectError(withSource(1, ["path": "/webhooks/tiktok"])) == #"sources[1].path: duplicate path "/webhooks/tiktok""#)
        #expect(expectError(withSource(1, ["name": "tiktok"])) == #"sources[1].name: duplicate source name "tiktok""#)
        #expect(expectError(withSource(0, ["path": "webhooks"])).hasPrefix("sources[0].path: "))
        #expect(expectError(withSource(0, ["name": "_unparsed"])).hasPrefix("sources[0].name: "))
        #expect(expectError(withSource(0, ["secrets": []])) == "sources[0].secrets: at least one secret is needed")
    }

    @Test func consumerRules() {
        func withConsumer(_ change: [String: Any]) -> [String: Any] {
            var document = Self.document()
            let consumer = (document["consumers"] as! [[String: Any]])[0].merging(change) { $1 }
            document["consumers"] = [consumer]
            return document
        }
        #expect(expectError(withConsumer(["sources": ["nope"]])) == #"consumers[0].sources[0]: no source is named "nope""#)
        #expect(expectError(withConsumer(["url": "ftp://x/y"])) == #"consumers[0].url: "ftp://x/y" is not an http or https URL"#)
        #expect(expectError(withConsumer(["events": ["a*b"]])).hasPrefix("consumers[0].events[0]: "))
        #expect(expectError(withConsumer(["name": "../etc"])).hasPrefix("consumers[0].name: "))
        #expect(expectError(withConsumer(["concurrency": 0])) == "consumers[0].concurrency: 0 is out of range 1...1024")
        #expect(
            expectError(withConsumer(["retry": ["initialDelay": "1m", "maxDelay": "1s"]]))
                == "consumers[0].retry.maxDelay: must not be less than initialDelay"
        )
    }

    @Test func notJSON() {
        #expect(throws: ConfigurationError(path: "", problem: "the configuration is not valid JSON")) {
            try GatewayConfiguration.parse(data: Data("{".utf8), baseDirectory: Self.base, environment: [:])
        }
    }
}
