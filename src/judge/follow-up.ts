import type { Services } from '../pipeline/services.js';
import type { ChatReply, ChatRequest } from '../pipeline/types.js';
import type { RequestInfo } from '../pipeline/record-attempt.js';
import { StreamText, wholeAnswerText } from './answer-text.js';

/**
 * What a routed request sampled for the judge or the shadow does once its answer is out. Sampling
 * is decided as the request starts; nothing here runs before the client has the answer's last byte.
 */
export class FollowUp {
  /** A stream's relayed text, gathered as it passes (only for a sampled request). */
  readonly streamText: StreamText | null;

  private constructor(
    readonly judged: boolean,
    readonly shadowed: boolean,
    stream: boolean,
    /** Sampled for the judge while it is grading: the answer will be graded (RoutingContext.graded). */
    readonly graded: boolean,
  ) {
    this.streamText = stream ? new StreamText() : null;
  }

  /** The follow-up of a routed request starting now, or null when it is sampled for neither. */
  static plan(gw: Pick<Services, 'judge' | 'shadow'>, stream: boolean): FollowUp | null {
    if (gw.judge === null) return null;
    const judged = gw.judge.sample();
    const shadowed = gw.shadow !== null && gw.shadow.sample();
    return judged || shadowed ? new FollowUp(judged, shadowed, stream, judged && gw.judge.grading()) : null;
  }

  /**
   * After a successful answer: once the response has finished (its last byte handed to the client's
   * connection), the answer is queued for the judge and the shadow call starts. `payload` is a whole
   * answer's body; a stream's text was gathered as it was relayed.
   */
  answered(gw: Pick<Services, 'judge' | 'shadow'>, reply: Pick<ChatReply, 'afterSent'>, request: ChatRequest, info: RequestInfo, served: string, traceId: string, payload: Buffer | null): void {
    const run = () => {
      const answer = payload !== null ? wholeAnswerText(payload) : (this.streamText?.text() ?? null);
      if (this.judged && answer !== null) {
        gw.judge!.enqueue({ traceId, requestId: info.requestId, system: info.context?.system ?? '', query: info.query, answer });
      }
      if (this.shadowed) {
        gw.shadow!.run({ request, info, served, servedTraceId: traceId, servedAnswer: answer, servedJudged: this.judged });
      }
    };
    reply.afterSent(run);
  }
}
