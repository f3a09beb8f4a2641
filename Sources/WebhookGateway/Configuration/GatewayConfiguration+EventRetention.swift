// Placeholder until the `events.retention` key lands from the configuration branch.
extension GatewayConfiguration {
    var eventRetention: Duration { .seconds(7 * 86_400) }
}
