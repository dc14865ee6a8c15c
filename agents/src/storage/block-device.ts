/**
 * What the data path (NBD today, the peer link later) sees of a volume.
 * Every host I/O goes through one of these; the splitter implements it on
 * top of the storage engine's volumes.
 */
export interface IoOptions {
  /** Force unit access: the write is durable before the promise settles. */
  fua?: boolean;
}

export interface WriteZeroesOptions extends IoOptions {
  /** Do not release tracks: write real zeroes (NBD_CMD_FLAG_NO_HOLE). */
  noHole?: boolean;
}

/** A run of the address space with one allocation state (for NBD_CMD_BLOCK_STATUS). */
export interface AllocationRun {
  length: number;
  /** False when the range is a hole that reads as zeroes. */
  allocated: boolean;
}

export interface BlockDevice {
  readonly name: string;
  readonly sizeBytes: number;
  /** Tracks are the unit of allocation; a good preferred I/O size. */
  readonly trackSize: number;
  readonly readOnly: boolean;
  /** Reads `target.length` bytes at `offset` into target. */
  readInto(offset: number, target: Buffer): Promise<void>;
  /**
   * `data` belongs to the caller again once the promise settles (NBD reuses
   * payload buffers): anything that must outlive the write, like an async
   * mirror's queue, copies it.
   */
  write(offset: number, data: Buffer, options?: IoOptions): Promise<void>;
  /**
   * Optional synchronous fast path of readInto: reads the range at once and
   * returns true when that needs no waiting (its data is in the page cache);
   * returns false when the caller must use readInto (target may then hold
   * part of the data). Never throws.
   */
  readIntoNow?(offset: number, target: Buffer): boolean;
  /**
   * Optional synchronous fast path of write without FUA: writes at once and
   * returns true when the write needs no waiting and nothing besides the
   * data itself (an overwrite in place, no tap, no lock held by another
   * write); returns false when the caller must use write, which then writes
   * the range (again). Never throws; `data` is the caller's again on return.
   */
  writeNow?(offset: number, data: Buffer): boolean;
  /**
   * Whether writeNow would take a write of `length` bytes at `offset` now
   * (it then fails only on an I/O error). Changes nothing; the answer holds
   * until the caller yields.
   */
  canWriteNow?(offset: number, length: number): boolean;
  /** Releases whole tracks in the range and zeroes partial ones. */
  trim(offset: number, length: number, options?: IoOptions): Promise<void>;
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  /** Every write that completed before this call is durable when it settles. */
  flush(): Promise<void>;
  /** Allocation runs covering [offset, offset+length), in order, adjacent runs merged. */
  allocationMap(offset: number, length: number): AllocationRun[];
  /** Called by the data path when a client opens and closes the device (for busy checks). */
  retain(): void;
  release(): void;
}

/** Finds the devices a data-path listener may export. */
export interface ExportCatalog {
  /** Export names with an optional description, for NBD_OPT_LIST. */
  listExports(): Array<{ name: string; description?: string }>;
  /** Opens an export by name; throws a ProblemError `not-found` when there is none. */
  openExport(name: string): BlockDevice;
}
