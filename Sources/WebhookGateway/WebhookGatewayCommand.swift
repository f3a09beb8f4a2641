import ArgumentParser

@main
struct WebhookGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook-gateway",
        abstract: "An edge service for TikTok webhooks: verify, de-duplicate, store durably, fan out.",
        subcommands: [
            DevCommand.self,
            ServeCommand.self, CheckConfigCommand.self, DeadLettersCommand.self, EventsCommand.self,
            ConsumersCommand.self, SignCommand.self,
            SendTestEventCommand.self,
        ]
    )
}
