// card: HIS → front. Infectious-disease report cards (emrInfReport), realtime when the card is saved.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('card') });
