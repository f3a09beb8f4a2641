import Foundation
import GRDB
import GRDBSQLite

/// One run of a prepared statement, with its arguments bound through SQLite's C API.
///
/// The group-commit inserts run several statements per accepted event. Going through GRDB's
/// `StatementArguments` boxes every argument as a `DatabaseValue` and copies it into an array
/// first; binding directly costs a fraction of that. The statement still comes from GRDB's cache
/// (`Database.cachedStatement`), which prepares it once and finalizes it with the connection.
/// Only the hot inserts use this; everything else binds through GRDB.
///
/// A bind that fails (a value over SQLite's length limit, no memory) leaves its parameter
/// unbound, which SQLite reads as NULL: a nullable column would quietly lose the value. So the
/// first failure is kept and `run()` throws it instead of stepping. Every run ends with the
/// statement reset and its bindings cleared, so no value of one event is left for the next.
struct BoundStatement: ~Copyable {
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection?
    private var position: Int32 = 0
    private var failure: Int32 = SQLITE_OK

    init(_ statement: Statement, in db: Database) {
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
        sqlite3_reset(handle)
    }

    /// SQLite copies the bytes before the bind returns (`SQLITE_TRANSIENT`).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    mutating func bind(_ text: String) {
        position += 1
        let position = position
        let handle = handle
        var text = text
        record(
            text.withUTF8 { bytes in
                guard let base = bytes.baseAddress else {
                    // Empty text, not NULL.
                    return sqlite3_bind_text(handle, position, "", 0, Self.transient)
                }
                guard let length = Int32(exactly: bytes.count) else { return SQLITE_TOOBIG }
                let characters = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
                return sqlite3_bind_text(handle, position, characters, length, Self.transient)
            }
        )
    }

    mutating func bind(_ text: String?) {
        guard let text else {
            position += 1
            record(sqlite3_bind_null(handle, position))
            return
        }
        bind(text)
    }

    mutating func bind(_ value: Int64) {
        position += 1
        record(sqlite3_bind_int64(handle, position, value))
    }

    mutating func bind(_ data: Data) {
        position += 1
        let position = position
        let handle = handle
        record(
            data.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress else {
                    // An empty blob, not NULL.
                    return sqlite3_bind_zeroblob(handle, position, 0)
                }
                guard let length = Int32(exactly: bytes.count) else { return SQLITE_TOOBIG }
                return sqlite3_bind_blob(handle, position, base, length, Self.transient)
            }
        )
    }

    private mutating func record(_ code: Int32) {
        if code != SQLITE_OK, failure == SQLITE_OK { failure = code }
    }

    /// Runs the statement to its end and returns how many rows it changed.
    consuming func run() throws -> Int {
        precondition(position == sqlite3_bind_parameter_count(handle), "every parameter must be bound")
        // Nothing of this run stays bound: the copies of the values are released now.
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        guard failure == SQLITE_OK else {
            throw error(failure, message: "binding an argument failed: " + String(cString: sqlite3_errstr(failure)))
        }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else { throw error(code, message: connection.map { String(cString: sqlite3_errmsg($0)) }) }
        return Int(sqlite3_changes(connection))
    }

    private func error(_ code: Int32, message: String?) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code),
            message: message,
            sql: String(cString: sqlite3_sql(handle))
        )
    }
}
