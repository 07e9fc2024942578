import ArgumentParser
import ChargeGateCore
import ChargeGateRedis

/// `charge-gate plan`: a subject's stored plan in Redis, set, read or cleared from the shell
/// (the record a spend reads first, before nginx's plan and the default; the same records as
/// the admin API's `/api/usage/plan`).
struct PlanCommand: ParsableCommand {
    /// The command's name, help and subcommands.
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Set, show or clear a subject's stored plan in Redis (the CLI form of the admin API's /api/usage/plan).",
        discussion: """
            A stored plan wins over nginx's $charge_gate_plan and the config's defaultPlan. Running \
            responders apply a change within about a second (their memory deny cache) and nginx within \
            edgeDenySeconds. Each subcommand prints {"subject","plan","source","periodAnchor"} as the \
            admin API answers it.
            """,
        subcommands: [SetPlanCommand.self, GetPlanCommand.self, ClearPlanCommand.self]
    )
}

/// The options every `plan` subcommand takes: where plans are stored.
struct PlanStoreOptions: ParsableArguments {
    /// The config file.
    @Option(help: "The YAML config file (its plans, redis and keyPrefix are used).")
    var config: String

    /// A Redis URL used instead of the config's.
    @Option(help: "Override the config's redis URL.")
    var redis: String?

    /// Whether SUBJECT is a key form (the admin API's `subjectKey`).
    @Flag(help: "SUBJECT is a key form as usage and events show it (h:...), not the subject as nginx passes it.")
    var keyForm = false

    /// `subject` in key form (`adminSubjectKey`); refuses an empty or overlong one, as the admin
    /// API does.
    func subjectKey(_ subject: String) throws -> String {
        guard !subject.isEmpty, subject.utf8.count <= Gate.maxAdminSubjectBytes else {
            throw ValidationError("<subject>: give 1 to \(Gate.maxAdminSubjectBytes) bytes")
        }
        return try adminSubjectKey(subject, keyForm: keyForm, option: "<subject>") ?? SafeToken.anonymous
    }

    /// The config, its `redis` replaced by `--redis` when given (the keys follow the store:
    /// a cluster's carry hash tags).
    func loadedConfig() throws -> GateConfig {
        var loaded = try loadConfig(config)
        if redis != nil { loaded.redis = try redisURL(redis, default: loaded.redis) }
        return loaded
    }

    /// The store named by `--redis` or the config; exits 1 when the config uses the memory store,
    /// which lives inside the responder: `method` is the admin API's verb for the same action.
    func store(_ loaded: GateConfig, method: String) throws -> any ChargeStore {
        guard let url = try redisURL(redis, default: loaded.redis) else {
            printError(
                "plan: the config names no redis; the memory store lives inside the responder:"
                    + " use the admin API instead (\(method) http://127.0.0.1/api/usage/plan?subject=S with the adminToken)")
            throw ExitCode(1)
        }
        return adminStore(url: url, config: loaded, timeoutMs: max(loaded.redisTimeoutMs, 2000))
    }

    /// Runs one store call; a store error becomes one line on stderr and exit 1.
    func storeCall<T>(_ body: () throws(StoreError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            printError("plan: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `charge-gate plan set SUBJECT PLAN`: store a plan for a subject.
struct SetPlanCommand: ParsableCommand {
    /// The command's name and help.
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Store PLAN for SUBJECT (the admin API's PUT /api/usage/plan) and print the stored answer."
    )

    /// The subject as nginx passes it, or its key form with `--key-form`.
    @Argument(help: "The subject, as nginx passes it (e.g. the client address or API key); with --key-form, its h:... key form.")
    var subject: String

    /// The plan's id; one of the config's plans.
    @Argument(help: "The plan's id: one of the config's plans.")
    var plan: String

    /// Where plans are stored.
    @OptionGroup var target: PlanStoreOptions

    /// Where the subject's periods count from, as given.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Count the subject's day/week/month periods from this time (epoch ms or ISO 8601) instead of the UTC calendar.",
            valueName: "time"))
    var anchor: String?

    /// The anchor in epoch ms, when one is given; nil when none.
    private func anchorMs() throws -> Int64? {
        guard let anchor else { return nil }
        guard let ms = EventFormat.parseTime(anchor), (0..<Limits.exactInteger).contains(ms) else {
            throw ValidationError("--anchor: expected epoch ms from 0 to 2^53 - 1, or ISO 8601 (e.g. 2025-12-01T00:00:00Z)")
        }
        return ms
    }

    /// Refuses a bad subject or anchor before anything is read.
    func validate() throws {
        _ = try target.subjectKey(subject)
        _ = try anchorMs()
    }

    /// Checks the plan against the config, stores the record and prints the answer.
    func run() throws {
        let periodAnchor = try anchorMs()
        let loaded = try target.loadedConfig()
        let gate = Gate(config: loaded)
        guard !loaded.plans.isEmpty else {
            printError("plan: no plans are configured in \(target.config) (add plans and defaultPlan first)")
            throw ExitCode(1)
        }
        guard let index = loaded.planIndex(id: plan) else {
            printError("plan: unknown plan '\(plan)' (plans: \(gate.plans.map(\.id).joined(separator: ", ")))")
            throw ExitCode(1)
        }
        let store = try target.store(loaded, method: "PUT")
        let subject = try target.subjectKey(self.subject)
        let record = PlanRecord(plan: loaded.plans[index].id, periodAnchor: periodAnchor)
        try target.storeCall { () throws(StoreError) in try store.setPlan(record, at: gate.keys.plan(subject: subject)) }
        print(gate.planJSON(subject: subject, plan: SubjectPlan(index: index, source: .stored, anchor: periodAnchor)))
    }
}

/// `charge-gate plan get SUBJECT`: the subject's plan and where it comes from.
struct GetPlanCommand: ParsableCommand {
    /// The command's name and help.
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print SUBJECT's plan and its source, stored or default (the admin API's GET /api/usage/plan, without nginx's variable)."
    )

    /// The subject as nginx passes it, or its key form with `--key-form`.
    @Argument(help: "The subject, as nginx passes it (e.g. the client address or API key); with --key-form, its h:... key form.")
    var subject: String

    /// Where plans are stored.
    @OptionGroup var target: PlanStoreOptions

    /// Refuses a bad subject before anything is read.
    func validate() throws {
        _ = try target.subjectKey(subject)
    }

    /// Reads the record and prints the subject's plan.
    func run() throws {
        let loaded = try target.loadedConfig()
        let gate = Gate(config: loaded)
        let store = try target.store(loaded, method: "GET")
        let subject = try target.subjectKey(self.subject)
        let record = try target.storeCall { () throws(StoreError) in try store.plan(at: gate.keys.plan(subject: subject)) }
        print(gate.planJSON(subject: subject, plan: gate.subjectPlan(record: record, nginxPlan: nil)))
    }
}

/// `charge-gate plan clear SUBJECT`: remove the subject's stored plan.
struct ClearPlanCommand: ParsableCommand {
    /// The command's name and help.
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Remove SUBJECT's stored plan (the admin API's DELETE /api/usage/plan) and print its plan afterwards."
    )

    /// The subject as nginx passes it, or its key form with `--key-form`.
    @Argument(help: "The subject, as nginx passes it (e.g. the client address or API key); with --key-form, its h:... key form.")
    var subject: String

    /// Where plans are stored.
    @OptionGroup var target: PlanStoreOptions

    /// Refuses a bad subject before anything is read.
    func validate() throws {
        _ = try target.subjectKey(subject)
    }

    /// Removes the record and prints the subject's plan without it.
    func run() throws {
        let loaded = try target.loadedConfig()
        let gate = Gate(config: loaded)
        let store = try target.store(loaded, method: "DELETE")
        let subject = try target.subjectKey(self.subject)
        try target.storeCall { () throws(StoreError) in _ = try store.clearPlan(at: gate.keys.plan(subject: subject)) }
        print(gate.planJSON(subject: subject, plan: gate.subjectPlan(record: nil, nginxPlan: nil)))
    }
}
