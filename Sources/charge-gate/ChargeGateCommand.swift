import ArgumentParser

/// `charge-gate`: the nginx charge gate's responder and its tools.
@main
struct ChargeGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charge-gate",
        abstract: "A spend budget in front of nginx-served endpoints: the FastCGI responder for auth_request, and its tools.",
        version: chargeGateVersion,
        subcommands: [
            ServeCommand.self, CheckConfigCommand.self, CheckNginxCommand.self, EventsCommand.self, StatusCommand.self, PlanCommand.self,
        ]
    )
}
