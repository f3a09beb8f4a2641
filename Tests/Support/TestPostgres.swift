import Foundation

/// The PostgreSQL database the tests of the shared store use, from the environment.
///
/// `scripts/postgres-test-cluster.sh start` starts a throwaway cluster and prints the variable;
/// `.ci/run` does so before `swift test`. Without it the PostgreSQL tests are skipped with this
/// message, except under CI (`CI` set), where a missing database is a failure: CI must never pass
/// by not running them.
public enum TestPostgres {
    public static let variable = "WEBHOOK_GATEWAY_TEST_POSTGRES_URL"

    /// The URL, or `nil` when no database is configured.
    public static var url: String? {
        let value = ProcessInfo.processInfo.environment[variable] ?? ""
        return value.isEmpty ? nil : value
    }

    /// Whether the PostgreSQL tests run: a database is configured, or CI is on (and then they fail
    /// loudly when it is missing).
    public static var enabled: Bool { url != nil || isCI }

    public static var isCI: Bool { !(ProcessInfo.processInfo.environment["CI"] ?? "").isEmpty }

    public static let skipMessage =
        "no PostgreSQL configured: run `eval \"$(scripts/postgres-test-cluster.sh start)\"` to run the PostgreSQL tests"

    /// A new schema name, so that each store under test starts empty.
    public static func freshSchema(_ prefix: String = "t") -> String {
        "\(prefix)_\(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF)"
    }

    /// The configured URL, or a failure that says how to configure one.
    public static func requireURL() throws -> String {
        guard let url else {
            struct Missing: Error, CustomStringConvertible {
                var description: String { "\(TestPostgres.variable) is not set under CI: \(TestPostgres.skipMessage)" }
            }
            throw Missing()
        }
        return url
    }
}
