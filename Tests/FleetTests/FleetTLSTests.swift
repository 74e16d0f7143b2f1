import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing
import RobotData
import RobotSim
@testable import Fleet

/// TLS on the fleet link, with self-signed certificates made by the `openssl` command line
/// (Debian's `openssl`, which `scripts/bootstrap` installs when missing).
@Suite("Fleet over TLS", .stopsLearners, .timeLimit(.minutes(5)))
struct FleetTLSTests {
    /// A self-signed P-256 certificate for 127.0.0.1 and its key, as PEM files in `directory`.
    static func selfSigned(in directory: URL, name: String) throws -> (cert: String, key: String) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("\(name).pem").path, key = directory.appendingPathComponent("\(name)-key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=\(name)",
                             "-addext", "subjectAltName=IP:127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return (cert, key)
    }

    @Test func actorsTrustingTheLearnersCertificateStreamOverTLSAndOthersAreTurnedAway() async throws {
        let dir = temporaryDirectory("tls")
        let server = try Self.selfSigned(in: dir, name: "learner")
        let stranger = try Self.selfSigned(in: dir, name: "stranger")
        let (learner, _) = try makeLearner("tls") { $0.tls = FleetTLS(certificateChain: server.cert, privateKey: server.key) }
        let port = try await learner.start()

        var c = smallActorConfig("tls-actor", port: port, episodes: 2, maxEpisodes: 2)
        c.tlsTrustRoots = server.cert
        let report = try await FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 1)).run()
        #expect(report.acked == 2 && report.unacked == 0)

        // A plaintext client and a client trusting another certificate cannot register.
        func registers(_ security: HTTP2ClientTransport.Posix.TransportSecurity) async -> Bool {
            do {
                let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)
                return try await withGRPCClient(transport: transport) { client in
                    var request = Swiftvla_Fleet_V1_RegisterActorRequest()
                    request.actorID = "outsider"; request.embodiment = "arm7"; request.tasks = ["reach"]
                    var options = CallOptions.defaults
                    options.timeout = .seconds(5)
                    _ = try await Swiftvla_Fleet_V1_Fleet.Client(wrapping: client).registerActor(request, options: options)
                    return true
                }
            } catch { return false }
        }
        #expect(await registers(FleetTLS.client(trustRoots: server.cert)))
        #expect(!(await registers(.plaintext)))
        #expect(!(await registers(FleetTLS.client(trustRoots: stranger.cert))))
        await learner.stop()
        #expect(learner.store.count == 2)
    }
}
