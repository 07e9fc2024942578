import Foundation

extension Responder {
    // MARK: GET / PUT / DELETE /api/usage/plan?subject=S (admin)

    /// The body of a `PUT`: exactly these keys.
    private struct PlanBody: Decodable {
        var plan: String
        var periodAnchor: Int64?

        private enum Keys: String, CodingKey, CaseIterable {
            case plan, periodAnchor
        }

        /// Any key, to refuse the ones that are not ours.
        private struct AnyKey: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let all = try decoder.container(keyedBy: AnyKey.self)
            if let stray = all.allKeys.first(where: { Keys(rawValue: $0.stringValue) == nil }) {
                throw DecodingError.dataCorrupted(.init(codingPath: [stray], debugDescription: "unknown key"))
            }
            let keys = try decoder.container(keyedBy: Keys.self)
            plan = try keys.decode(String.self, forKey: .plan)
            periodAnchor = try keys.decodeIfPresent(Int64.self, forKey: .periodAnchor)
        }
    }

    func plan(_ request: some RequestParams, gate: Gate) -> Response {
        if let refused = Self.onlyMethods(["GET", "HEAD", "PUT", "DELETE"], request) { return refused }
        if let refused = Self.requireAdmin(request, gate: gate) { return refused }
        let query = request.param(Param.query) ?? ""
        if let refused = Self.refuseRepeated(["subject", "subjectKey"], in: query) { return refused }
        let given = QueryString.value(of: "subject", in: query)
        let givenKey = QueryString.value(of: "subjectKey", in: query)
        guard let text = given ?? givenKey, !text.isEmpty, text.utf8.count <= Gate.maxAdminSubjectBytes else {
            return .error(
                400, "bad_request", [("message", "subject: give the subject once, as ?subject=S (1 to 1024 bytes) or ?subjectKey=KEY")])
        }
        let named: String?
        do {
            named = try AdminSubject.key(subject: given, subjectKey: givenKey)
        } catch {
            return .error(400, "bad_request", [("message", error.message)])
        }
        guard let subject = named else { return .error(400, "bad_request", [("message", "subject: give the subject")]) }
        let key = gate.keys.plan(subject: subject)
        let method = request.param(Param.method) ?? ""
        do {
            switch method {
            case "PUT":
                guard let bytes = request.body(limit: 4096) else {
                    return .error(413, "bad_request", [("message", "body: at most 4096 bytes")])
                }
                let body: PlanBody
                do {
                    body = try JSONDecoder().decode(PlanBody.self, from: Data(bytes))
                } catch {
                    return .error(
                        400, "bad_request", [("message", #"body: expected JSON {"plan":"ID","periodAnchor":EPOCH_MS?}"#)])
                }
                guard let index = gate.config.planIndex(id: body.plan) else {
                    let known = gate.plans.map(\.id).joined(separator: ", ")
                    return .error(
                        400, "unknown_plan",
                        [("message", known.isEmpty ? "no plans are configured" : "plan: one of \(known)")])
                }
                if let anchor = body.periodAnchor, !(0..<Limits.exactInteger).contains(anchor) {
                    return .error(400, "bad_request", [("message", "periodAnchor: epoch milliseconds from 0 to 2^53 - 1")])
                }
                let record = PlanRecord(plan: gate.config.plans[index].id, periodAnchor: body.periodAnchor)
                try store.setPlan(record, at: key)
                denials.invalidateAll()
                var response = Response.json(
                    200, gate.planJSON(subject: subject, plan: SubjectPlan(index: index, source: .stored, anchor: record.periodAnchor)))
                response.note = .init(
                    isError: false, message: "plan set",
                    fields: [(.subject, subject), (.plan, record.plan), (.periodAnchor, record.periodAnchor.map(String.init) ?? "none")])
                return response
            case "DELETE":
                let removed = try store.clearPlan(at: key)
                denials.invalidateAll()
                var response = Response.json(
                    200, gate.planJSON(subject: subject, plan: gate.subjectPlan(record: nil, nginxPlan: request.param(Param.plan))))
                response.note = .init(
                    isError: false, message: "plan cleared", fields: [(.subject, subject), (.removed, String(removed))])
                return response
            default:
                let record = try store.plan(at: key)
                return .json(
                    200, gate.planJSON(subject: subject, plan: gate.subjectPlan(record: record, nginxPlan: request.param(Param.plan))))
            }
        } catch {
            return Self.unavailable(error, what: "plan")
        }
    }
}
