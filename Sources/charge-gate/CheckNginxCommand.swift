import ArgumentParser
import ChargeGateCore
import ChargeGateNginx
import Glibc

/// `charge-gate check-nginx`: proves from nginx's own configuration (`nginx -T`) that every
/// route of the config is charged in every server that uses the gate.
struct CheckNginxCommand: ParsableCommand {
    /// The subcommand's name, help and exit statuses.
    static let configuration = CommandConfiguration(
        commandName: "check-nginx",
        abstract:
            "Check that nginx charges every route of the config: one line per (server, route), gated or NOT GATED with the file:line at fault.",
        discussion: """
            Reads nginx's whole configuration from `nginx -T` (with -c NGINX.CONF when given) or from a saved
            `nginx -T` output (--dump), and follows each route's requests through nginx's location search,
            rewrite phase and access phase to the gate; on a settled route (settle:), to the settlement line
            where the request ends. Exit status: 0 every route is gated (warnings allowed, unless --strict),
            1 a route is not gated, not settled or cannot be decided, 2 the configuration could not be read.
            """
    )

    /// `--format`.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        /// A table; JSON for CI.
        case text, json
    }

    /// `--config`.
    @Option(help: "The YAML config file: its routes are checked.")
    var config: String

    /// `--nginx-conf`.
    @Option(name: .customLong("nginx-conf"), help: "nginx's main configuration file (nginx -T -c FILE); default: nginx's own.")
    var nginxConf: String?

    /// `--dump`.
    @Option(help: "A saved `nginx -T` output to read instead of running nginx.")
    var dump: String?

    /// `--format`.
    @Option(help: "text (a table) or json.")
    var format: Format = .text

    /// `--nginx`.
    @Option(help: "The nginx binary (default: nginx on PATH, else /usr/sbin/nginx).")
    var nginx: String?

    /// `--nginx-prefix`.
    @Option(name: .customLong("nginx-prefix"), help: "nginx's prefix (-p), for configurations with relative paths.")
    var nginxPrefix: String?

    /// `--listen`.
    @Option(help: "Where the responder listens, as `serve --listen` (default: the config's listen): the auth location must pass there.")
    var listen: String?

    /// `--settle-listen`.
    @Option(
        name: .customLong("settle-listen"),
        help:
            "Where the responder reads settlement lines, as `serve --settle-listen` (default: the config's settleListen, else settle.sock beside a unix listen): the settlement line must go there."
    )
    var settleListen: String?

    /// `--strict`.
    @Flag(help: "Exit 1 on warnings too.")
    var strict = false

    /// `--dump` excludes the options that run nginx.
    func validate() throws {
        if dump != nil && (nginxConf != nil || nginx != nil || nginxPrefix != nil) {
            throw ValidationError("--dump reads a saved nginx -T output: it takes no --nginx-conf, --nginx or --nginx-prefix")
        }
        if let listen, ListenAddress(parsing: listen) == nil {
            throw ValidationError("--listen: expected a unix socket path, host:port, or inherit")
        }
        if let settleListen, !settleListen.hasPrefix("/") {
            throw ValidationError("--settle-listen: expected an absolute unix socket path")
        }
    }

    /// Reads the routes and nginx's configuration, prints the report; exit 0, 1 or 2.
    func run() throws {
        let routes: [RouteConfig]
        var address = listen.flatMap(ListenAddress.init(parsing:))
        let settleSocket: String?
        let amountVariable: String
        switch ConfigLoader.load(path: config) {
        case .success(var loaded):
            routes = loaded.routes
            address = address ?? loaded.listen
            if let address { loaded.listen = address }
            settleSocket = settleListen ?? loaded.settleSocketPath
            amountVariable = loaded.amountVariable
        case .failure(let errors):
            for error in errors.errors { printError("\(error)") }
            throw ExitCode(2)
        }

        let bytes = try dump.map(Self.readDump) ?? runNginx()
        let model: NginxModel
        do {
            model = NginxModel(try NginxConfiguration(dump: try NginxDump(parsing: bytes)))
        } catch {
            printError("check-nginx: cannot read nginx's configuration: \(error)")
            throw ExitCode(2)
        }
        let report = GateAnalyser(
            model: model, routes: routes, listen: address, settleSocket: settleSocket, amountVariable: amountVariable
        ).analyse()
        var out = StandardOutput()
        let text = format == .json ? report.json() : report.text()
        out.write(String(text.dropLast()))
        out.flush()
        if !report.isGated || (strict && !report.warnings.isEmpty) { throw ExitCode(1) }
    }

    /// The bytes of a saved dump; exit 2 when it cannot be read.
    private static func readDump(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            printError("check-nginx: cannot read \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(2)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                printError("check-nginx: cannot read \(path): \(String(cString: strerror(errno)))")
                throw ExitCode(2)
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    /// `nginx -T` (quiet, its start-up log on stderr) with the given configuration and prefix;
    /// exit 2 with nginx's own message when it fails.
    private func runNginx() throws -> [UInt8] {
        let binary = nginx ?? Self.findNginx()
        var arguments = [binary, "-T", "-q", "-e", "stderr"]
        if let nginxPrefix { arguments += ["-p", nginxPrefix] }
        if let nginxConf { arguments += ["-c", nginxConf] }
        let result: (status: Int32, output: [UInt8], errors: [UInt8])
        do {
            result = try Self.spawn(arguments)
        } catch {
            printError("check-nginx: cannot run \(binary): \(error.message)")
            throw ExitCode(2)
        }
        guard result.status == 0 else {
            let lines = String(decoding: result.errors, as: UTF8.self).split(separator: "\n").map(String.init)
            let reason = lines.first { $0.contains("[emerg]") || $0.contains("[alert]") || $0.contains("[crit]") } ?? lines.last
            printError("check-nginx: nginx -T failed (exit \(result.status)): \(reason ?? "no message")")
            throw ExitCode(2)
        }
        return result.output
    }

    /// nginx on PATH, else Debian's /usr/sbin/nginx.
    private static func findNginx() -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"] {
            let candidate = directory + "/nginx"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return "/usr/sbin/nginx"
    }

    /// Why a process could not be started.
    struct SpawnError: Error {
        /// strerror's text.
        var message: String
    }

    /// Runs `arguments[0]` with its standard output and error captured (read together with
    /// poll, so neither pipe can fill up and block it); its exit status (128 + signal when
    /// killed).
    private static func spawn(_ arguments: [String]) throws(SpawnError) -> (status: Int32, output: [UInt8], errors: [UInt8]) {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw SpawnError(message: String(cString: strerror(errno))) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw SpawnError(message: String(cString: strerror(spawned)))
        }

        var output: [UInt8] = []
        var errors: [UInt8] = []
        var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
        var open = 2
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while open > 0 {
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    if index == 0 { output += chunk[0..<n] } else { errors += chunk[0..<n] }
                } else if n == 0 || errno != EINTR {
                    close(fds[index].fd)
                    fds[index].fd = -1
                    open -= 1
                }
            }
        }
        for item in fds where item.fd >= 0 { close(item.fd) }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output, errors)
    }
}
