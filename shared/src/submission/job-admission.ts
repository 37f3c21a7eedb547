/**
 * Whether Redis may take a new job now (a StorageGuard): refused while a server may evict keys or
 * memory is above its high watermark, so that jobs already accepted are never lost for space.
 */
export interface JobAdmission {
  /** Throws the refusal of a new job, if any (a domain error the API answers 503 or 507). */
  admit(): Promise<void>;
  /** The refusal as of the last check, for an upload under way (checked at every chunk it stages). */
  refusal(): Error | null;
}
