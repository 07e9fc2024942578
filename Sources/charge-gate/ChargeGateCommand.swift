import ArgumentParser

/// `charge-gate`: the nginx charge gate's responder and its tools.
@main
struct ChargeGateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charge-gate",
        abstract: "A spend budget in front of nginx-served endpoints: the FastCGI responder for auth_request, and its tools.",
        subcommands: [ServeCommand.self, CheckConfigCommand.self, EventsCommand.self, StatusCommand.self]
    )
}
