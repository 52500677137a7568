// patient: HIS → front, realtime. Patients (emrPatientInfo) and the HIS master data (baseUser, baseDept).
import { receiveFunction } from '../../shared/ingest/receiver.js';
import { resourcesOf } from '../../schemas/index.js';

export default receiveFunction({ resources: resourcesOf('patient') });
