/**
 * The abort function a call gives its caller (the handler's `onConnect`). A caller may keep that
 * function long after the call ended: Node's fetch() stores it on its fetch controller, whose
 * objects stay reachable through minor GCs (a WeakRef's target survives every scavenge until a
 * full GC). A closure over the call itself kept the whole call with them — its attempts, headers,
 * trace state and undici's request — copied into the old generation at each scavenge: measured on
 * fetch(), 0.4-0.5 MB more promoted per scavenge than fetch through undici's Agent, and more full
 * GCs. So the function reaches the call through this link, which the call cuts when it ends: what
 * the caller keeps is this object and the function, nothing more.
 */
export interface AbortTarget {
  callerAbort(reason: Error | undefined): void;
}

export class CallerAbort {
  #target: AbortTarget | undefined;

  constructor(target: AbortTarget) {
    this.#target = target;
  }

  /** What the caller is given: aborts the call while it runs, nothing once it ended. */
  readonly abort = (reason?: Error): void => {
    this.#target?.callerAbort(reason);
  };

  /** The call ended: the caller's function no longer reaches it. */
  cut(): void {
    this.#target = undefined;
  }
}
