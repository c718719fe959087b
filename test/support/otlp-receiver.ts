/**
 * An OTLP/HTTP trace receiver on loopback for the tests, as a collector is: POST /v1/traces in
 * OTLP's JSON form (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) decoded into plain spans; a
 * protobuf body is counted (its content type kept), not decoded. `waitFor` resolves on arrivals,
 * not on a timer.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedSpan {
  traceId: string
  spanId: string
  parentSpanId: string
  name: string
  /** 1 internal, 2 server, 3 client. */
  kind: number
  attributes: Record<string, unknown>
  links: Array<{ traceId: string; spanId: string }>
  status: { code?: number; message?: string }
  events: Array<{ name: string; attributes: Record<string, unknown> }>
  resource: Record<string, unknown>
}

export interface OtlpReceiver {
  url: string
  spans: ReceivedSpan[]
  /** Every request's content type, in order. */
  contentTypes: string[]
  /** Resolves once `predicate` holds for what has arrived (checked at each arrival). */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean): Promise<void>
  /** Stops it (a collector gone). The caller says when: after the server that exports to it has stopped. */
  close(): Promise<void>
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } }
const valueOf = (value: OtlpValue): unknown =>
  value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue ?? value.arrayValue?.values?.map(valueOf)
const attributesOf = (list: Array<{ key: string; value: OtlpValue }> = []) => Object.fromEntries(list.map(({ key, value }) => [key, valueOf(value)]))

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const waiters: Array<{ predicate: (spans: ReceivedSpan[]) => boolean; resolve: () => void }> = []
  const state: OtlpReceiver = {
    url: '',
    spans: [],
    contentTypes: [],
    waitFor: (predicate) => new Promise<void>((resolve) => {
      if (predicate(state.spans)) resolve()
      else waiters.push({ predicate, resolve })
    }),
    async close() {
      http.closeAllConnections()
      await new Promise((resolve) => http.close(resolve))
    },
  }
  const http = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const type = req.headers['content-type'] ?? ''
      state.contentTypes.push(type)
      if (req.url === '/v1/traces' && type.startsWith('application/json')) {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans?: any[] }
        for (const resourceSpans of body.resourceSpans ?? []) {
          const resource = attributesOf(resourceSpans.resource?.attributes)
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              state.spans.push({
                traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name, kind: span.kind,
                attributes: attributesOf(span.attributes),
                links: (span.links ?? []).map((link: any) => ({ traceId: link.traceId, spanId: link.spanId })),
                status: span.status ?? {},
                events: (span.events ?? []).map((event: any) => ({ name: event.name, attributes: attributesOf(event.attributes) })),
                resource,
              })
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      for (const waiter of [...waiters]) {
        if (!waiter.predicate(state.spans)) continue
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
  return state
}
