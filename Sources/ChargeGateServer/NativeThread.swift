import Glibc

/// A joinable POSIX thread running a closure. Started from ordinary (nonisolated) library code:
/// a thread closure written in `main.swift`'s top-level code would be main-actor isolated.
public struct NativeThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    public let handle: pthread_t

    /// Starts `body` on a new thread; nil when the system refuses.
    public static func start(_ body: @escaping @Sendable () -> Void) -> NativeThread? {
        // Retained here, released by the thread once it has taken the closure.
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(
            &handle, nil,
            { raw in
                guard let raw else { return nil }
                let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
                body.run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return nil
        }
        return NativeThread(handle: handle)
    }

    /// Sends `signal` to the thread (to interrupt a blocking accept).
    public func signal(_ signal: Int32) {
        pthread_kill(handle, signal)
    }

    /// Waits for the thread to end.
    public func join() {
        pthread_join(handle, nil)
    }
}
