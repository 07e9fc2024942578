import Testing

@testable import ChargeGateServer

/// Socket activation as sd_listen_fds(3) reads it: only for the pid it names, fds from 3 on,
/// found by their `FileDescriptorName=`.
@Suite struct SystemdSocketsTests {
    @Test func theNamedFdsStartAtThree() throws {
        let sockets = try #require(
            SystemdSockets(environment: ["LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "fastcgi:settle"], pid: 42))
        #expect(sockets.fd(named: "fastcgi") == 3)
        #expect(sockets.fd(named: "settle") == 4)
        #expect(sockets.fd(named: "other") == nil)
    }

    @Test func anotherProcesssActivationIsNotOurs() {
        #expect(SystemdSockets(environment: ["LISTEN_PID": "41", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "settle"], pid: 42) == nil)
        #expect(SystemdSockets(environment: ["LISTEN_FDS": "1", "LISTEN_FDNAMES": "settle"], pid: 42) == nil)
        #expect(SystemdSockets(environment: [:], pid: 42) == nil)
    }

    @Test(arguments: ["0", "-1", "x", "65", ""])
    func aBadCountIsNoActivation(_ count: String) {
        #expect(SystemdSockets(environment: ["LISTEN_PID": "42", "LISTEN_FDS": count, "LISTEN_FDNAMES": "settle"], pid: 42) == nil)
    }

    @Test func namesThatDoNotMatchTheCountNameNothing() throws {
        let sockets = try #require(
            SystemdSockets(environment: ["LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "settle"], pid: 42))
        #expect(sockets.names == ["unknown", "unknown"])
        #expect(sockets.fd(named: "settle") == nil)
        let unnamed = try #require(SystemdSockets(environment: ["LISTEN_PID": "42", "LISTEN_FDS": "1"], pid: 42))
        #expect(unnamed.fd(named: "settle") == nil)
    }
}
