import ChargeGateCore
import ChargeGateRedis
import Testing

/// The RESP encoder alone (no Redis needed): exact bytes, reuse, and the copy for EVAL.
@Suite struct RESPCommandTests {
    static func encoded(_ command: inout RESPCommand) -> String {
        command.withEncoded { String(decoding: $0, as: UTF8.self) }
    }

    @Test func encodesEveryArgumentKind() {
        var command = RESPCommand(capacity: 4)  // grows past its first capacity
        command.append("EVALSHA")
        command.append("")
        command.append([0, 0x0D, 0x0A] as [UInt8])
        command.append(Int64.min)
        command.append(0)
        command.append(Int64.max)
        command.append("é")
        #expect(command.count == 7)
        #expect(
            Self.encoded(&command)
                == "*7\r\n$7\r\nEVALSHA\r\n$0\r\n\r\n$3\r\n\u{0}\r\n\r\n$20\r\n-9223372036854775808\r\n$1\r\n0\r\n$19\r\n9223372036854775807\r\n$2\r\né\r\n"
        )
    }

    @Test(arguments: [0, 1, 9, 10, 11, 99, 100, 1234])
    func argumentCountsOfAnyWidth(count: Int) {
        var command = RESPCommand()
        for _ in 0..<count { command.append("x") }
        let expected = "*\(count)\r\n" + String(repeating: "$1\r\nx\r\n", count: count)
        #expect(Self.encoded(&command) == expected)
    }

    @Test func removeAllStartsOverAndEncodingTwiceIsStable() {
        var command = RESPCommand()
        command.append("SET")
        command.append("k")
        _ = Self.encoded(&command)
        command.removeAll()
        command.append("PING")
        #expect(Self.encoded(&command) == "*1\r\n$4\r\nPING\r\n")
        #expect(Self.encoded(&command) == "*1\r\n$4\r\nPING\r\n")
    }

    @Test func argumentsAfterAMarkMoveToAnotherHead() {
        var evalsha = RESPCommand()
        evalsha.append("EVALSHA")
        evalsha.append("abc")
        let mark = evalsha.mark
        evalsha.append(1)
        evalsha.append("key")
        var eval = RESPCommand()
        eval.append("EVAL")
        eval.append("return 1")
        eval.append(argumentsOf: evalsha, after: mark)
        #expect(Self.encoded(&eval) == "*4\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$3\r\nkey\r\n")
    }

    @Test func binaryArgumentsFromByteArrays() {
        var command = RESPCommand([Array("GET".utf8), [0xFF, 0x00]])
        let bytes = command.withEncoded { Array($0) }
        #expect(bytes == Array("*2\r\n$3\r\nGET\r\n$2\r\n".utf8) + [0xFF, 0x00] + Array("\r\n".utf8))
    }

    @Test(
        "a stream placed in a slot is written as KeySpace.events makes its key", arguments: ["charge:#events", "", "é#events"],
        ["0", "1a", "zzz"])
    func taggedStream(head: String, tag: String) {
        var tagged = RESPCommand(capacity: 2)  // grows on the way
        tagged.append("XADD")
        tagged.append(head, tagged: tag)
        tagged.append(1)
        var plain = RESPCommand()
        plain.append("XADD")
        plain.append(KeySpace.events(head, tag: tag))
        plain.append(1)
        #expect(tagged.count == 3)
        #expect(Self.encoded(&tagged) == Self.encoded(&plain))
    }
}
