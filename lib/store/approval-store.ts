import type { ApprovalAnswer, ClaimedReply, PausedReply, PendingApproval } from './chat-store.ts'

/** Tool calls waiting for their user's answer (docs/tools.md "Approvals"), and the paused replies they hold. */
export interface ApprovalStore {
  /**
   * Records `ownerId`'s answer to a call waiting in `sessionId`: `missing` for an unknown call (or
   * someone else's), `answered` once answered (or past its time), else how many of its reply's
   * calls still wait.
   */
  answerApproval(sessionId: string, ownerId: string, callId: string, approve: boolean, now: string): Promise<ApprovalAnswer>
  /** Calls past their time count as denied; the replies that leaves with every call answered. */
  expireApprovals(now: string): Promise<PausedReply[]>
  /** When the next waiting call runs out of time, if any does. */
  nextApprovalExpiry(): Promise<string | null>
  /** Paused replies whose every call is answered (left by a stop, or by a resume that could not run then). */
  answeredReplies(): Promise<PausedReply[]>
  /**
   * Takes a paused reply whose calls are all answered for resuming it here: it is `streaming`
   * again (this instance's). Null when it is not such a reply (any more: taken elsewhere).
   */
  claimAnsweredReply(replyId: string): Promise<ClaimedReply | null>
  /** The calls of `sessionId` waiting for an answer, oldest first. */
  pendingApprovals(sessionId: string): Promise<PendingApproval[]>
}
