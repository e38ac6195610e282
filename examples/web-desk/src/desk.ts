// The example web desk: receives a dossier in hoso over grpc-web, straight from the browser (no
// proxy), then reads it back and shows it. Bundled into dist/desk.js by `npm run build`.
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Channel, DeadlineState, DossierQueryService, type Dossier } from "./gen/hoso/v1/dossier_pb";
import { DeskService } from "./gen/hoso/v1/desk_pb";

const form = document.querySelector<HTMLFormElement>("#receive")!;
const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
const result = document.querySelector<HTMLElement>("#dossier")!;
const failure = document.querySelector<HTMLElement>("#failure")!;
const status = document.querySelector<HTMLElement>("#status")!;

/** Vietnam's offset: receipt codes carry the local date of receipt. */
const LOCAL_OFFSET_MS = 7 * 3600 * 1000;

/** The local date of `at` as YYYYMMDD. */
function localDate(at: Date): string {
  return new Date(at.getTime() + LOCAL_OFFSET_MS).toISOString().slice(0, 10).replaceAll("-", "");
}

function fillDefaults() {
  const params = new URLSearchParams(location.search);
  field("server").value = params.get("server") ?? "http://127.0.0.1:50051";
  const sequence = String(Math.floor(Math.random() * 10_000_000)).padStart(7, "0");
  field("receiptCode").value = `G09.20-${localDate(new Date())}-${sequence}`;
  field("applicantRef").value = crypto.randomUUID();
}

/**
 * The receipt being sent, with its command id and time: kept until the server answers, so that
 * sending the same form again after a network failure retries the very same command (which the
 * server then records once), and a new command for a different form.
 */
let pending: { form: string; commandId: string; occurredAt: Date } | undefined;

function commandFor(formText: string): { commandId: string; occurredAt: Date } {
  if (pending?.form !== formText) {
    pending = { form: formText, commandId: crypto.randomUUID(), occurredAt: new Date() };
  }
  return pending;
}

function clients(server: string, token: string) {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createGrpcWebTransport({ baseUrl: server, interceptors: [bearer] });
  return { desk: createClient(DeskService, transport), query: createClient(DossierQueryService, transport) };
}

/** An instant in Vietnam's local time, as officers read deadlines: `2026-07-07 17:00 (UTC+7)`. */
function when(at: Timestamp | undefined): string {
  if (!at) {
    return "";
  }
  const local = new Date(timestampDate(at).getTime() + LOCAL_OFFSET_MS).toISOString();
  return `${local.slice(0, 10)} ${local.slice(11, 16)} (UTC+7)`;
}

function show(dossier: Dossier, position: bigint) {
  const rows: [string, string, string][] = [
    ["receipt-code", "Receipt code", dossier.receiptCode],
    ["dossier-id", "Dossier id", dossier.dossierId],
    ["status", "Status", dossier.statusName],
    ["procedure", "Procedure", `${dossier.procedure?.code ?? ""} ${dossier.procedure?.name ?? ""}`.trim()],
    ["handling-agency", "Handling agency", dossier.handlingAgency],
    ["channel", "Channel", Channel[dossier.channel] ?? String(dossier.channel)],
    ["received-at", "Received at", when(dossier.receivedAt)],
    ["due-at", "Due at", when(dossier.dueAt)],
    ["deadline", "Deadline", DeadlineState[dossier.deadline?.state ?? 0] ?? ""],
    ["version", "Version", String(dossier.version)],
    ["position", "Position in the log", String(position)],
  ];
  result.replaceChildren(
    ...rows.flatMap(([id, label, value]) => {
      const term = document.createElement("dt");
      term.textContent = label;
      const description = document.createElement("dd");
      description.id = `shown-${id}`;
      description.textContent = value;
      return [term, description];
    }),
  );
  result.hidden = false;
}

/** The gRPC name of a status code (PERMISSION_DENIED), as hoso's docs and operators say it. */
function grpcCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function fail(err: unknown) {
  const connect = ConnectError.from(err);
  // The server's message names the field or rule broken; the code says what kind of refusal.
  const code = grpcCodeName(connect.code);
  failure.textContent = `${code}: ${connect.rawMessage}`;
  failure.dataset.code = code;
  failure.hidden = false;
}

async function receive(event: SubmitEvent) {
  event.preventDefault();
  failure.hidden = true;
  result.hidden = true;
  const values = Object.fromEntries(new FormData(form)) as Record<string, string>;
  const { desk, query } = clients(values.server.replace(/\/+$/, ""), values.token.trim());
  const { commandId, occurredAt } = commandFor(JSON.stringify(values));
  status.textContent = "Sending…";
  try {
    const { outcome } = await desk.receiveDossier({
      command: { commandId, occurredAt: timestampFromDate(occurredAt) },
      receiptCode: values.receiptCode.trim(),
      procedure: { code: values.procedure.trim() },
      handlingAgency: values.handlingAgency.trim(),
      channel: Number(values.channel) as Channel,
      applicantRef: values.applicantRef.trim(),
    });
    pending = undefined;
    const { dossier } = await query.getDossier({
      dossier: { ref: { case: "dossierId", value: outcome!.dossierId } },
    });
    show(dossier!, outcome!.position);
    status.textContent = outcome!.replayed ? "Already received: nothing new was written." : "Received.";
  } catch (err) {
    // A refusal is final for this form; a network failure keeps the command id for the retry.
    if (err instanceof ConnectError && err.code !== Code.Unavailable && err.code !== Code.Unknown) {
      pending = undefined;
    }
    status.textContent = "";
    fail(err);
  }
}

fillDefaults();
form.addEventListener("submit", (event) => void receive(event));
document.body.dataset.ready = "true";
