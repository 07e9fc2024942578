/// Which location nginx uses for a URI in a server: `ngx_http_core_find_location` mirrored.
/// The static tree of the level first (an exact match ends the search, an auto redirect too);
/// from the longest prefix, its nested locations the same way; then, unless that prefix was
/// `^~`, the level's regexes in config order, the first that matches winning (and its nested
/// locations searched in turn). Named locations are never matched by URI.
public struct NginxLocationMatcher {
    /// What nginx does with the URI.
    public enum Match: Sendable, Equatable {
        /// This location (block id) serves it.
        case location(Int)
        /// nginx answers 301 to the URI with `/` added (the location ending in `/` that proxies).
        case autoRedirect(Int)
        /// No location matches: the server's own configuration serves it.
        case server
        /// A regex that had to be tried cannot be evaluated: the block id of its location and
        /// why.
        case undecidable(Int, String)
    }

    private let model: NginxModel
    private let regexes: NginxRegexCache

    /// A matcher over `model`, compiling regexes into `regexes`.
    public init(model: NginxModel, regexes: NginxRegexCache) {
        self.model = model
        self.regexes = regexes
    }

    /// nginx's return codes of the search, and a regex that cannot be evaluated.
    private enum Code {
        /// `NGX_OK`, `NGX_DONE` (auto redirect), `NGX_AGAIN` (a prefix), `NGX_DECLINED`.
        case ok, done, again, declined
        /// The location whose regex cannot be evaluated, and why.
        case failed(Int, String)
    }

    /// The location for `uri` (nginx's decoded, normalised `$uri`) in `server`.
    public func find(_ uri: String, in server: Int) -> Match {
        var current: Int?
        let code = find(Array(uri.utf8), uri, level: server, current: &current)
        switch code {
        case .failed(let block, let why): return .undecidable(block, why)
        case .done: return current.map(Match.autoRedirect) ?? .server
        case .ok, .again, .declined: return current.map(Match.location) ?? .server
        }
    }

    private func find(_ bytes: [UInt8], _ uri: String, level: Int, current: inout Int?) -> Code {
        var code: Code
        var noRegex = false
        let (found, foundNoRegex) = model[level].staticLocations.find(bytes)
        switch found {
        case .exact(let id):
            current = id
            return .ok
        case .autoRedirect(let id):
            current = id
            return .done
        case .prefix(let id):
            current = id
            noRegex = foundNoRegex
            code = find(bytes, uri, level: id, current: &current)
            switch code {
            case .ok, .done, .failed: return code
            case .again, .declined: break
            }
        case .none:
            code = .declined
        }
        guard !noRegex else { return code }
        for id in model[level].regexLocations {
            guard let (modifier, pattern) = model[id].locationSpec else { continue }
            switch regexes.regex(pattern, caseless: modifier == .regexCaseless) {
            case .failure(let failure):
                return .failed(id, failure.message)
            case .success(let regex):
                guard regex.match(uri) != nil else { continue }
                current = id
                if case .failed(let block, let why) = find(bytes, uri, level: id, current: &current) { return .failed(block, why) }
                return .ok
            }
        }
        return code
    }
}
