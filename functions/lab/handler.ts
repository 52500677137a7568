// lab: HIS → front. Lab reports and their items (emrExLab, emrExLabItem), within 2 hours of the result.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('lab') });
