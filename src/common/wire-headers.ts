// Names on the wire between the gateway, the EPP and the PD group leader
// (headers, metadata keys, the gRPC service), defined once. The GIE names come from the Gateway API
// Inference Extension protocol; the PD names from the product's docs.

/** Request header and `envoy.lb` metadata key carrying the chosen endpoints (GIE). */
export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
/** Metadata key the gateway reports the endpoint it actually used under (GIE). */
export const SERVED_KEY = 'x-gateway-destination-endpoint-served';
/** Metadata key of the gateway's subset hint (GIE). */
export const SUBSET_KEY = 'x-gateway-destination-endpoint-subset';
/** Header carrying the model name the gateway rewrote the request to (GIE). */
export const MODEL_REWRITE_HEADER = 'x-gateway-model-name-rewrite';
/** Request header naming the request's InferenceObjective (GIE): its priority. */
export const OBJECTIVE_HEADER = 'x-gateway-inference-objective';
/** Dynamic metadata namespace of the destination (GIE). */
export const DESTINATION_METADATA_NAMESPACE = 'envoy.lb';

/** The ext_proc gRPC service (Envoy); also a grpc.health.v1 service name. */
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/** PD: the prefill pod the EPP chose, `ip:port`, read by the group leader. */
export const PREFILL_HEADER = 'x-openfuyao-prefill-pod-address-port';
/** PD: the decode pod the EPP chose, `ip:port`, read by the group leader. */
export const DECODE_HEADER = 'x-openfuyao-decode-pod-address-port';
/** PD: response headers naming the pods the leader actually used. */
export const SERVED_PREFILL_HEADER = 'x-hermes-pd-prefill';
export const SERVED_DECODE_HEADER = 'x-hermes-pd-decode';
