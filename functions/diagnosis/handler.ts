// diagnosis: HIS → front. Diagnosis activities (emrActivityInfo), realtime when a doctor issues or revises a diagnosis.
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('diagnosis') });
