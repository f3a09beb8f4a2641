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
struct BoundStatement: ~Copyable {
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection?
    private var position: Int32 = 0

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
        text.withUTF8 { bytes in
            if let base = bytes.baseAddress {
                let characters = UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self)
                _ = sqlite3_bind_text(handle, position, characters, Int32(bytes.count), Self.transient)
            } else {
                // Empty text, not NULL.
                _ = sqlite3_bind_text(handle, position, "", 0, Self.transient)
            }
        }
    }

    mutating func bind(_ text: String?) {
        guard let text else {
            position += 1
            sqlite3_bind_null(handle, position)
            return
        }
        bind(text)
    }

    mutating func bind(_ value: Int64) {
        position += 1
        sqlite3_bind_int64(handle, position, value)
    }

    mutating func bind(_ data: Data) {
        position += 1
        let position = position
        let handle = handle
        data.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress {
                _ = sqlite3_bind_blob(handle, position, base, Int32(bytes.count), Self.transient)
            } else {
                // An empty blob, not NULL.
                _ = sqlite3_bind_zeroblob(handle, position, 0)
            }
        }
    }

    /// Runs the statement to its end and returns how many rows it changed.
    consuming func run() throws -> Int {
        precondition(position == sqlite3_bind_parameter_count(handle), "every parameter must be bound")
        defer { sqlite3_reset(handle) }
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code),
                message: connection.map { String(cString: sqlite3_errmsg($0)) },
                sql: String(cString: sqlite3_sql(handle))
            )
        }
        return Int(sqlite3_changes(connection))
    }
}
