import Foundation
import GRPCNIOTransportHTTP2

/// TLS for the fleet's gRPC links (learner ⇄ actors, policy server ⇄ robots): PEM files.
/// Plaintext stays the default on loopback; anything crossing a network should use this
/// together with the learner's auth token.
public struct FleetTLS: Sendable, Equatable {
    /// Server side: the certificate chain it presents and its private key.
    public var certificateChain: String
    public var privateKey: String

    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }

    /// The server's transport security (plaintext when `tls` is nil).
    public static func server(_ tls: FleetTLS?) -> HTTP2ServerTransport.Posix.TransportSecurity {
        guard let tls else { return .plaintext }
        return .tls(certificateChain: [.file(path: tls.certificateChain, format: .pem)],
                    privateKey: .file(path: tls.privateKey, format: .pem))
    }

    /// A client's transport security: TLS verifying the server against `trustRoots` (a PEM
    /// file of CA or self-signed certificates; the certificate must name the host or IP
    /// dialled), or plaintext when nil.
    public static func client(trustRoots: String?) -> HTTP2ClientTransport.Posix.TransportSecurity {
        guard let trustRoots else { return .plaintext }
        return .tls { $0.trustRoots = .certificates([.file(path: trustRoots, format: .pem)]) }
    }
}
