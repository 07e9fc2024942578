import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Synchronization
import Testing

// Pure: the discovery state machine and the process's master record, against scripted sentinel
// answers. No Redis is needed (docs/redis.md, "Failover with Sentinel").

private func hp(_ text: String) -> RedisURL.HostPort {
    let colon = text.lastIndex(of: ":")!
    return RedisURL.HostPort(host: String(text[..<colon]), port: Int(text[text.index(after: colon)...])!)
}

/// A `SENTINEL MASTER` answer: the flat list of names and values.
private func master(_ address: String, epoch: Int64 = 0, flags: String = "master") -> Result<RedisValue, StoreError> {
    let a = hp(address)
    let pairs = [
        ("name", "mymaster"), ("ip", a.host), ("port", String(a.port)), ("runid", "x"), ("flags", flags),
        ("num-other-sentinels", "2"), ("config-epoch", String(epoch)),
    ]
    return .success(.array(pairs.flatMap { [RedisValue.string(Array($0.0.utf8)), .string(Array($0.1.utf8))] }))
}

private let isMaster: Result<RedisValue, StoreError> = .success(.array([.string(Array("master".utf8)), .integer(100), .array([])]))
private let isReplica: Result<RedisValue, StoreError> = .success(
    .array([.string(Array("slave".utf8)), .string(Array("127.0.0.1".utf8)), .integer(6380), .string(Array("connected".utf8)), .integer(9)]))
private let refused: Result<RedisValue, StoreError> = .failure(.unavailable("connect to 127.0.0.1:6380: Connection refused"))

/// A scripted round: what each sentinel and each node answers, and the expected transcript.
struct DiscoveryCase: Sendable, CustomTestStringConvertible {
    var name: String
    var newestEpoch: Int64 = -1
    var avoid: String?
    var sentinels: [String: Result<RedisValue, StoreError>]
    var roles: [String: Result<RedisValue, StoreError>] = [:]
    var transcript: [String]
    var testDescription: String { name }
}

private let s1 = "127.0.0.1:26379"
private let s2 = "127.0.0.1:26380"
private let s3 = "127.0.0.1:26381"
private let a = "127.0.0.1:6380"
private let b = "127.0.0.1:6381"

@Suite struct SentinelDiscoveryTests {
    static let cases: [DiscoveryCase] = [
        DiscoveryCase(
            name: "the first sentinel names the master",
            sentinels: [s1: master(a)], roles: [a: isMaster],
            transcript: ["ask \(s1)", "role \(a)", "found \(a) epoch 0 via \(s1)"]),
        DiscoveryCase(
            name: "an unreachable sentinel is skipped",
            sentinels: [s1: .failure(.unavailable("connect to 127.0.0.1:26379: Connection refused")), s2: master(a)],
            roles: [a: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "role \(a)", "found \(a) epoch 0 via \(s2)"]),
        DiscoveryCase(
            name: "a sentinel naming a replica is skipped (ROLE)",
            sentinels: [s1: master(b), s2: master(a, epoch: 1)], roles: [b: isReplica, a: isMaster],
            transcript: ["ask \(s1)", "role \(b)", "ask \(s2)", "role \(a)", "found \(a) epoch 1 via \(s2)"]),
        DiscoveryCase(
            name: "a sentinel that does not know the name is skipped",
            sentinels: [s1: .success(.error("ERR No such master with that name")), s2: master(a)], roles: [a: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "role \(a)", "found \(a) epoch 0 via \(s2)"]),
        DiscoveryCase(
            name: "a master the sentinel sees down is skipped without connecting",
            sentinels: [s1: master(a, flags: "master,s_down"), s2: master(b, epoch: 1)], roles: [b: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "role \(b)", "found \(b) epoch 1 via \(s2)"]),
        DiscoveryCase(
            name: "a stale sentinel (older config epoch) is skipped",
            newestEpoch: 2, sentinels: [s1: master(a, epoch: 1), s2: master(b, epoch: 2)], roles: [b: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "role \(b)", "found \(b) epoch 2 via \(s2)"]),
        DiscoveryCase(
            name: "the master under failover is never used",
            newestEpoch: 0, avoid: a, sentinels: [s1: master(a), s2: master(a), s3: master(b, epoch: 1)], roles: [b: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "ask \(s3)", "role \(b)", "found \(b) epoch 1 via \(s3)"]),
        DiscoveryCase(
            name: "a node already rejected is not tried again",
            sentinels: [s1: .failure(.timeout), s2: master(a), s3: master(a)], roles: [a: refused],
            transcript: [
                "ask \(s1)", "ask \(s2)", "role \(a)", "ask \(s3)",
                "failed: no usable master 'mymaster' from 3 sentinels: \(s1): no answer within redisTimeoutMs; "
                    + "\(s2): names \(a), which cannot be reached (connect to 127.0.0.1:6380: Connection refused); "
                    + "\(s3): names \(a), which cannot be reached (connect to 127.0.0.1:6380: Connection refused)",
            ]),
        DiscoveryCase(
            name: "every sentinel stale: the newest of their answers is tried",
            newestEpoch: 5, sentinels: [s1: master(a, epoch: 1), s2: master(a, epoch: 1), s3: master(b, epoch: 2)], roles: [b: isMaster],
            transcript: ["ask \(s1)", "ask \(s2)", "ask \(s3)", "role \(b)", "found \(b) epoch 2 via \(s3) (stale)"]),
        DiscoveryCase(
            name: "every answer unusable: one reason per sentinel",
            sentinels: [
                s1: .success(.string(Array("nonsense".utf8))), s2: master(a, flags: "master,o_down,failover_in_progress"),
                s3: master(b),
            ],
            roles: [b: .success(.error("NOPERM this user has no permissions to run the 'role' command"))],
            transcript: [
                "ask \(s1)", "ask \(s2)", "ask \(s3)", "role \(b)",
                "failed: no usable master 'mymaster' from 3 sentinels: \(s1): unexpected answer to SENTINEL MASTER; "
                    + "\(s2): names \(a), which it sees down (o_down); "
                    + "\(s3): names \(b), which did not answer ROLE (NOPERM this user has no permissions to run the 'role' command)",
            ]),
        DiscoveryCase(
            name: "a failover in progress is skipped",
            sentinels: [s1: master(a, flags: "master,failover_in_progress"), s2: master(a)], roles: [a: isReplica],
            transcript: [
                "ask \(s1)", "ask \(s2)", "role \(a)",
                "failed: no usable master 'mymaster' from 2 sentinels: \(s1): names \(a), which it sees being failed over; "
                    + "\(s2): names \(a), which is not a master (ROLE slave)",
            ]),
    ]

    @Test(arguments: cases)
    func round(_ c: DiscoveryCase) {
        var machine = SentinelDiscovery(
            sentinels: [s1, s2, s3].filter { c.sentinels[$0] != nil || $0 == s1 }.map(hp), masterName: "mymaster",
            newestEpoch: c.newestEpoch, avoid: c.avoid.map(hp))
        var transcript: [String] = []
        var step = machine.start()
        for _ in 0..<20 {
            switch step {
            case .askSentinel(let s):
                transcript.append("ask \(s)")
                step = machine.sentinelAnswered(c.sentinels[s.description] ?? .failure(.unavailable("not scripted")))
            case .checkRole(let node):
                transcript.append("role \(node)")
                step = machine.roleAnswered(c.roles[node.description] ?? .failure(.unavailable("not scripted")))
            case .found(let m):
                transcript.append("found \(m.address) epoch \(m.configEpoch) via \(m.sentinel)\(m.fromStaleSentinels ? " (stale)" : "")")
                #expect(transcript == c.transcript)
                return
            case .failed(let why):
                transcript.append("failed: \(why)")
                #expect(transcript == c.transcript)
                return
            }
        }
        Issue.record("no end after 20 steps: \(transcript)")
    }

    @Test func noSentinelsFails() {
        var machine = SentinelDiscovery(sentinels: [], masterName: "m")
        #expect(machine.start() == .failed("no usable master 'm' from 0 sentinels: no sentinel listed"))
    }

    @Test func readOnlyAndMasterDownMeanRediscover() {
        #expect(RedisConnection.meansNotMaster("READONLY You can't write against a read only replica."))
        #expect(
            RedisConnection.meansNotMaster(
                "READONLY You can't write against a read only replica. script: 73872edf, on @user_script:1."))
        #expect(RedisConnection.meansNotMaster("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."))
        #expect(!RedisConnection.meansNotMaster("NOSCRIPT No matching script. Please use EVAL."))
        #expect(!RedisConnection.meansNotMaster("CHARGEGATE corrupt bucket state at key charge:x"))
    }
}

/// The process's record: one failover event per failover, whatever the number of workers.
@Suite struct MasterRecordTests {
    private func found(_ address: String, epoch: Int64 = 0, via sentinel: String = s1, stale: Bool = false) -> SentinelDiscovery.Master {
        SentinelDiscovery.Master(address: hp(address), configEpoch: epoch, sentinel: hp(sentinel), fromStaleSentinels: stale)
    }

    @Test func firstMasterThenAFailoverSeenByErrors() {
        var r = MasterRecord()
        #expect(r.connected(found(a), nowMs: 0) == [.found(master: a, sentinel: s1)])
        #expect(r.connected(found(a), nowMs: 10) == [])  // a second worker: nothing new
        r.failed(on: hp(a), nowMs: 1000)
        r.failed(on: hp(a), nowMs: 1200)  // the first failure counts
        #expect(r.discoveryFailed("x", nowMs: 1300) == [.discoveryFailed("x")])
        #expect(r.lostAtMs == 1000)
        #expect(r.generation == 0)
        #expect(r.connected(found(b, epoch: 1), nowMs: 3500) == [.failover(from: a, to: b, withoutMasterMs: 2500)])
        #expect(r.generation == 1 && r.current == hp(b) && r.lostAtMs == nil && r.newestEpoch == 1)
        #expect(r.connected(found(b, epoch: 1), nowMs: 3600) == [])
        #expect(r.generation == 1)
    }

    @Test func aFailoverSeenByThePollerMovesEveryWorker() {
        var r = MasterRecord()
        _ = r.connected(found(a), nowMs: 0)
        r.observed(hp(a), epoch: 0, flags: ["master"], nowMs: 100)
        #expect(r.generation == 0 && r.avoid == nil)
        // SENTINEL FAILOVER: the leader shows the failover first, then the new epoch.
        r.observed(hp(a), epoch: 0, flags: ["master", "failover_in_progress"], nowMs: 200)
        #expect(r.generation == 1 && r.avoid == hp(a) && r.lostAtMs == 200)
        r.observed(hp(a), epoch: 0, flags: ["master", "failover_in_progress"], nowMs: 300)
        #expect(r.generation == 1)  // once
        r.observed(hp(b), epoch: 1, flags: ["master"], nowMs: 1200)
        #expect(r.avoid == nil && r.newestEpoch == 1 && r.generation == 2)
        // A worker whose discovery began before the news is refused, and asks again.
        #expect(r.connected(found(a, epoch: 0), nowMs: 1250) == nil)
        #expect(r.connected(found(b, epoch: 1), nowMs: 1300) == [.failover(from: a, to: b, withoutMasterMs: 1100)])
        #expect(r.generation == 3)
    }

    @Test func anAbortedFailoverCalmsDown() {
        var r = MasterRecord()
        _ = r.connected(found(a), nowMs: 0)
        r.observed(hp(a), epoch: 0, flags: ["master", "o_down"], nowMs: 100)
        #expect(r.avoid == hp(a))
        #expect(r.connected(found(a), nowMs: 150) == nil)  // not while it is under failover
        r.calm()
        #expect(r.avoid == nil)
        #expect(r.connected(found(a), nowMs: 900) == [])  // same master again: no failover
        #expect(r.lostAtMs == nil)
    }

    @Test func aNewEpochSettlesAnOldFailover() {
        var r = MasterRecord()
        _ = r.connected(found(a), nowMs: 0)
        r.observed(hp(b), epoch: 0, flags: ["master", "o_down"], nowMs: 10)  // another node, once
        #expect(r.avoid == hp(b) && r.generation == 0)
        r.observed(hp(b), epoch: 1, flags: ["master"], nowMs: 20)  // later promoted after all
        #expect(r.avoid == nil && r.generation == 1)
        #expect(r.connected(found(b, epoch: 1), nowMs: 30) == [.failover(from: a, to: b, withoutMasterMs: 10)])
    }

    @Test func sentinelsRebuiltWithLowerEpochsAreBelieved() {
        var r = MasterRecord()
        _ = r.connected(found(a, epoch: 7), nowMs: 0)
        #expect(r.connected(found(a, epoch: 0, stale: true), nowMs: 10) == [])
        #expect(r.newestEpoch == 0)
    }

    @Test func aStaleSentinelNeverMovesTheProcessBack() {
        var r = MasterRecord()
        _ = r.connected(found(b, epoch: 3), nowMs: 0)
        r.observed(hp(a), epoch: 2, flags: ["master"], nowMs: 10)  // a sentinel that missed the failover
        #expect(r.generation == 0 && r.current == hp(b))
    }

    @Test func theWatchReportsEachEventOnce() {
        let events = EventLog()
        let clock = ManualClock(5_000)
        let watch = MasterWatch(masterName: "mymaster", clock: clock) { events.append($0) }
        #expect(watch.connected(found(a)) == 0)
        #expect(watch.connected(found(a)) == 0)
        clock.advance(40)
        watch.failed(on: hp(a))
        clock.advance(250)  // the time without a master is read from the watch's clock
        #expect(watch.connected(found(b, epoch: 1)) == 1)
        #expect(watch.generation == 1)
        let seen = events.all
        #expect(seen.count == 2)
        #expect(seen.first == .found(master: a, sentinel: s1))
        #expect(seen.last == .failover(from: a, to: b, withoutMasterMs: 250))
    }
}

/// A thread-safe list of events.
final class EventLog: Sendable {
    private let events = Mutex<[MasterRecord.Event]>([])
    func append(_ event: MasterRecord.Event) { events.withLock { $0.append(event) } }
    var all: [MasterRecord.Event] { events.withLock { $0 } }
}
