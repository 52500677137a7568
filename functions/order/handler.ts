// order: HIS → front. Orders and prescriptions with their items (emrOrder, emrOrderItem), T+0.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('order') });
