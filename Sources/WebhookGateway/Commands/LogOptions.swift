import ArgumentParser
import Logging

/// `--log-level` of the commands that run a gateway (`serve`, `dev`).
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// The gateway's logger at the chosen level.
    var logger: Logger {
        var logger = Logger(label: "webhook-gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}
