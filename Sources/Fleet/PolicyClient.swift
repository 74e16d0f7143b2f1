import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import VLAModel

/// The Swift side of `vla serve`: sends observations, gets native action chunks. (Python
/// robots use `swiftvla_client.PolicyClient`.)
public enum PolicyClient {
    public typealias Client = Swiftvla_Fleet_V1_PolicyServer.Client<HTTP2ClientTransport.Posix>

    /// Runs `body` with a connected client of the server at `host:port`.
    /// `trustRoots`: connect over TLS trusting the certificates in this PEM file.
    public static func with<R: Sendable>(host: String = "127.0.0.1", port: Int, trustRoots: String? = nil,
                                         _ body: (Client) async throws -> R) async throws -> R {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: host, port: port),
                                                       transportSecurity: FleetTLS.client(trustRoots: trustRoots))
        return try await withGRPCClient(transport: transport) { client in
            try await body(Swiftvla_Fleet_V1_PolicyServer.Client(wrapping: client))
        }
    }

    /// The request for one observation; `seed` fixes the sampler's noise.
    public static func request(_ observation: PolicyObservation, imageSize: Int, seed: UInt64? = nil) -> Swiftvla_Fleet_V1_PredictChunkRequest {
        var request = Swiftvla_Fleet_V1_PredictChunkRequest()
        request.embodiment = observation.embodiment.name
        request.instruction = observation.instruction
        request.state = observation.nativeState
        request.cameras = observation.cameras.sorted { $0.key < $1.key }.map { name, rgb in
            var frame = Swiftvla_Fleet_V1_CameraFrame()
            frame.name = name
            frame.height = UInt32(imageSize)
            frame.width = UInt32(imageSize)
            frame.rgb = Data(rgb)
            return frame
        }
        if let seed { request.seedKnown = true; request.seed = seed }
        return request
    }

    /// The response's actions as rows `[H][actionDim]`.
    public static func chunk(_ response: Swiftvla_Fleet_V1_PredictChunkResponse) -> [[Float]] {
        let width = Int(response.actionDim)
        guard width > 0 else { return [] }
        return stride(from: 0, to: response.actions.count, by: width).map { Array(response.actions[$0..<min($0 + width, response.actions.count)]) }
    }
}
