/// A configuration problem, naming the field it is about.
///
/// The description reads `<path>: <problem>`, e.g.
/// `consumers[1].retry.initialDelay: "10 parsecs" is not a duration`. Secret values never appear
/// in it: for a secret field only the reference (`env:NAME`, `file:PATH`) or "the literal" does.
package struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The field's path, e.g. `sources[0].secrets[1]`; empty for the document itself.
    let path: String
    let problem: String

    package var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}
