extension ChargeStore {
    /// One page of the events of several streams, merged in id order: the stream this version
    /// writes and the one earlier versions wrote (`Gate.eventStreams`), so that an export spans
    /// an upgrade. Each stream is read with the same query; the merged page holds at most
    /// `query.limit` events (one more only when two streams hold the same id at the cut, so
    /// that resuming after it loses neither).
    public func events(streams: [String], _ query: EventQuery) throws(StoreError) -> EventPage {
        if streams.count == 1 { return try events(stream: streams[0], query) }
        var pages: [EventPage] = []
        for stream in streams { pages.append(try events(stream: stream, query)) }
        let merged = pages.flatMap(\.events).sorted { EventID.precedes($0.id, $1.id) }
        var taken = Array(merged.prefix(query.limit))
        while let last = taken.last, taken.count < merged.count, merged[taken.count].id == last.id {
            taken.append(merged[taken.count])
        }
        let more = taken.count < merged.count || pages.contains { $0.next != nil }
        guard more else { return EventPage(events: taken, next: nil) }
        // Nothing matched yet but a stream was scanned further: resume at the least progress.
        let resume = taken.last?.id ?? pages.compactMap(\.next).min(by: EventID.precedes)
        return EventPage(events: taken, next: resume)
    }
}
