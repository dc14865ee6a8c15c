/**
 * What the NBD path reports of the requests it answers (metrics, see
 * agents/src/metrics): narrow interfaces so NBD knows no metrics library.
 * A connection asks for its export's meter once, when transmission starts;
 * each answered request then costs one `performance.now()` at its start and
 * one call here at its end.
 */
export interface NbdOperationMeter {
  /** A request started at `startedAt` (performance.now()) was answered; `bytes` of data moved (READ/WRITE payload, else 0). */
  answered(startedAt: number, bytes: number): void;
  /** A request started at `startedAt` was answered with an error. */
  failed(startedAt: number): void;
}

/** The meters of one export, one per operation. */
export interface NbdExportMeter {
  read: NbdOperationMeter;
  write: NbdOperationMeter;
  flush: NbdOperationMeter;
  trim: NbdOperationMeter;
  writeZeroes: NbdOperationMeter;
  blockStatus: NbdOperationMeter;
}

/** Gives each export (by name) its meter; the same one every time for the same name. */
export interface NbdMeters {
  forExport(exportName: string): NbdExportMeter;
}
